//! The model architectures ptb evaluates: the one table of their spec names
//! and Hugging Face classes. The spec's `arch=` takes a name from here; the
//! evaluator builds the declared architecture (`hf_class`) and picks the
//! reference harness's chat template by it.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    Qwen3,
    SmolLM3,
    Gemma3,
    Llama,
}

impl Arch {
    pub const ALL: [Arch; 4] = [Arch::Qwen3, Arch::SmolLM3, Arch::Gemma3, Arch::Llama];
    /// The spec's names, in [`Arch::ALL`]'s order (for diagnostics).
    pub const NAMES: [&'static str; 4] = ["qwen3", "smollm3", "gemma3", "llama"];

    /// The name in specs, keys (`model.arch`) and `PTB_MODEL_ARCH`.
    pub fn name(self) -> &'static str {
        Arch::NAMES[self as usize]
    }

    /// `architectures[0]` of a Hugging Face checkpoint of this architecture.
    pub fn hf_class(self) -> &'static str {
        match self {
            Arch::Qwen3 => "Qwen3ForCausalLM",
            Arch::SmolLM3 => "SmolLM3ForCausalLM",
            Arch::Gemma3 => "Gemma3ForCausalLM",
            Arch::Llama => "LlamaForCausalLM",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture `{0}` (known: qwen3, smollm3, gemma3, llama)")]
pub struct UnknownArch(pub String);

impl FromStr for Arch {
    type Err = UnknownArch;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arch::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| UnknownArch(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Arch::ALL {
            assert_eq!(a.name().parse::<Arch>(), Ok(a));
        }
        assert!("gpt2".parse::<Arch>().is_err());
    }
}
