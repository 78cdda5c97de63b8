"""Reference functions for the tests, written independently of the package."""


def fmix64(k: int) -> int:
    """MurmurHash3's 64-bit finaliser on Python integers (negative values wrap to 64 bits)."""
    m = (1 << 64) - 1
    k &= m
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & m
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & m
    k ^= k >> 33
    return k
