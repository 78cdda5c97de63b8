"""Host side of the accelerator: golden models, driver, DLRM trainer and data loaders."""
