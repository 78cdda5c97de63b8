// Compiled simulation harness of the Hotline accelerator top (hotline_top).
//
// The Verilated model, an AXI4 memory model (host memory in one flat byte
// array that Python maps as a NumPy array without copying) and an AXI4-Lite
// register master, stepped many cycles per call.  Built and loaded by
// hotline.host.sim (ctypes).  DATA_BYTES is set by the build (-DDATA_BYTES=8).

#include <cstdint>
#include <cstring>
#include <deque>
#include <vector>

#include "Vtop.h"
#include "verilated.h"

#ifndef DATA_BYTES
#error "DATA_BYTES must be defined"
#endif

namespace {

// ---- access to ports of any width ---------------------------------------------------
template <typename T> void put_bytes(T &port, const uint8_t *src) { std::memcpy(&port, src, DATA_BYTES); }
template <typename T> void get_bytes(const T &port, uint8_t *dst) { std::memcpy(dst, &port, DATA_BYTES); }
template <std::size_t N> void put_bytes(VlWide<N> &port, const uint8_t *src) { std::memcpy(port.data(), src, DATA_BYTES); }
template <std::size_t N> void get_bytes(const VlWide<N> &port, uint8_t *dst) { std::memcpy(dst, port.data(), DATA_BYTES); }

struct Burst { uint64_t addr; uint32_t beats; uint32_t id; uint64_t ready_at; };
struct Resp { uint32_t id; uint32_t resp; };

struct Sim {
    VerilatedContext ctx;
    Vtop *top;
    std::vector<uint8_t> mem;
    uint64_t cycles = 0;
    uint32_t latency = 0;
    std::deque<Burst> rq;      // accepted AR bursts
    std::deque<Burst> awq;     // accepted AW bursts awaiting W
    std::deque<Resp> bq;       // B responses to send
    uint64_t rd_beats = 0, wr_beats = 0;

    explicit Sim(uint64_t bytes, uint32_t lat) : mem(bytes, 0), latency(lat) {
        top = new Vtop(&ctx);
        top->clk = 0; top->rst = 1;
        drive();
        top->eval();
    }
    ~Sim() { top->final(); delete top; }

    bool in_range(uint64_t a) const { return a + DATA_BYTES <= mem.size(); }

    // model outputs for the coming cycle, from the model state alone
    void drive() {
        top->m_axi_arready = rq.size() < 32;
        top->m_axi_awready = awq.size() < 32;
        top->m_axi_wready = !awq.empty();
        if (!rq.empty() && rq.front().ready_at <= cycles) {
            const Burst &b = rq.front();
            top->m_axi_rvalid = 1;
            top->m_axi_rid = b.id;
            top->m_axi_rlast = b.beats == 1;
            uint8_t beat[DATA_BYTES] = {0};
            if (in_range(b.addr)) { std::memcpy(beat, &mem[b.addr], DATA_BYTES); top->m_axi_rresp = 0; }
            else top->m_axi_rresp = 3;
            put_bytes(top->m_axi_rdata, beat);
        } else {
            top->m_axi_rvalid = 0;
        }
        if (!bq.empty()) { top->m_axi_bvalid = 1; top->m_axi_bid = bq.front().id; top->m_axi_bresp = bq.front().resp; }
        else top->m_axi_bvalid = 0;
    }

    // one clock: sample handshakes, rising edge, update the model, falling edge
    void step() {
        bool ar = top->m_axi_arvalid && top->m_axi_arready;
        bool r = top->m_axi_rvalid && top->m_axi_rready;
        bool aw = top->m_axi_awvalid && top->m_axi_awready;
        bool w = top->m_axi_wvalid && top->m_axi_wready;
        bool b = top->m_axi_bvalid && top->m_axi_bready;
        Burst nar{}, naw{};
        if (ar) nar = Burst{(uint64_t)top->m_axi_araddr, (uint32_t)top->m_axi_arlen + 1u, (uint32_t)top->m_axi_arid, cycles + 1 + latency};
        if (aw) naw = Burst{(uint64_t)top->m_axi_awaddr, (uint32_t)top->m_axi_awlen + 1u, (uint32_t)top->m_axi_awid, 0};
        uint8_t wdata[DATA_BYTES];
        uint64_t wstrb = 0;
        bool wlast = false;
        if (w) { get_bytes(top->m_axi_wdata, wdata); wstrb = (uint64_t)top->m_axi_wstrb; wlast = top->m_axi_wlast; }
        top->clk = 1;
        top->eval();
        cycles++;
        if (r) {
            Burst &f = rq.front();
            rd_beats++;
            f.addr += DATA_BYTES;
            if (--f.beats == 0) rq.pop_front();
        }
        if (ar) rq.push_back(nar);
        if (aw) awq.push_back(naw);
        if (w) {
            Burst &f = awq.front();
            wr_beats++;
            bool ok = in_range(f.addr);
            if (ok)
                for (int i = 0; i < DATA_BYTES; i++)
                    if ((wstrb >> i) & 1) mem[f.addr + i] = wdata[i];
            f.addr += DATA_BYTES;
            f.beats--;
            if (wlast || f.beats == 0) { bq.push_back(Resp{f.id, ok ? 0u : 3u}); awq.pop_front(); }
        }
        if (b) bq.pop_front();
        drive();
        top->clk = 0;
        top->eval();
    }
};

}  // namespace

extern "C" {

void *hs_new(uint64_t mem_bytes, uint32_t latency) { return new Sim(mem_bytes, latency); }
void hs_free(void *p) { delete static_cast<Sim *>(p); }
uint8_t *hs_mem(void *p) { return static_cast<Sim *>(p)->mem.data(); }
uint64_t hs_mem_bytes(void *p) { return static_cast<Sim *>(p)->mem.size(); }
uint64_t hs_cycles(void *p) { return static_cast<Sim *>(p)->cycles; }
int hs_irq(void *p) { return static_cast<Sim *>(p)->top->irq; }
void hs_set_latency(void *p, uint32_t latency) { static_cast<Sim *>(p)->latency = latency; }

void hs_reset(void *p, uint32_t n) {
    Sim *s = static_cast<Sim *>(p);
    s->top->rst = 1;
    for (uint32_t i = 0; i < n; i++) s->step();
    s->top->rst = 0;
    s->top->eval();
    s->step();   // the design's reset is a register (sim_verilog): it ends one edge later
}

void hs_run(void *p, uint64_t n) {
    Sim *s = static_cast<Sim *>(p);
    for (uint64_t i = 0; i < n; i++) s->step();
}

// One AXI4-Lite write; returns BRESP, or -1 if no response within `limit` cycles.
int hs_csr_write(void *p, uint32_t addr, uint32_t data, uint32_t limit) {
    Sim *s = static_cast<Sim *>(p);
    Vtop *t = s->top;
    t->s_axil_awaddr = addr; t->s_axil_awprot = 0; t->s_axil_awvalid = 1;
    t->s_axil_wdata = data; t->s_axil_wstrb = 0xF; t->s_axil_wvalid = 1;
    t->s_axil_bready = 1;
    t->eval();
    bool aw_done = false, w_done = false;
    for (uint32_t i = 0; i < limit; i++) {
        bool aw = t->s_axil_awvalid && t->s_axil_awready;
        bool w = t->s_axil_wvalid && t->s_axil_wready;
        bool b = t->s_axil_bvalid;
        int resp = t->s_axil_bresp;
        s->step();
        if (aw) { aw_done = true; t->s_axil_awvalid = 0; }
        if (w) { w_done = true; t->s_axil_wvalid = 0; }
        t->eval();
        if (b && aw_done && w_done) { t->s_axil_bready = 0; t->eval(); return resp; }
    }
    t->s_axil_awvalid = 0; t->s_axil_wvalid = 0; t->s_axil_bready = 0; t->eval();
    return -1;
}

// One AXI4-Lite read into *data; returns RRESP, or -1 on timeout.
int hs_csr_read(void *p, uint32_t addr, uint32_t *data, uint32_t limit) {
    Sim *s = static_cast<Sim *>(p);
    Vtop *t = s->top;
    t->s_axil_araddr = addr; t->s_axil_arprot = 0; t->s_axil_arvalid = 1; t->s_axil_rready = 1;
    t->eval();
    bool ar_done = false;
    for (uint32_t i = 0; i < limit; i++) {
        bool ar = t->s_axil_arvalid && t->s_axil_arready;
        bool r = t->s_axil_rvalid;
        uint32_t d = t->s_axil_rdata;
        int resp = t->s_axil_rresp;
        s->step();
        if (ar) { ar_done = true; t->s_axil_arvalid = 0; }
        t->eval();
        if (r && ar_done) { *data = d; t->s_axil_rready = 0; t->eval(); return resp; }
    }
    t->s_axil_arvalid = 0; t->s_axil_rready = 0; t->eval();
    return -1;
}

}  // extern "C"
