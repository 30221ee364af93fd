//! The host-side tensor weights are read into, before they go to a device:
//! shared by the safetensors (`weights`) and GGUF (`gguf`) readers.

/// A dense f32 tensor in row-major order.
#[derive(Debug, Clone)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}
