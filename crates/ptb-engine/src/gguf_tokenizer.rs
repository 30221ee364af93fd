//! A `tokenizers` tokenizer rebuilt from GGUF metadata (byte-level BPE, "gpt2" in llama.cpp's
//! terms), so a GGUF file is a complete model without a separate tokenizer.json.

use serde_json::{Value, json};
use tokenizers::Tokenizer;

use super::error::{EvalError, Result};
use super::gguf::{GgufFile, Meta};

pub fn from_gguf(g: &GgufFile) -> Result<Tokenizer> {
    let err = |m: String| EvalError::Tokenizer { path: g.path.clone(), message: m };
    let model = g.meta.get("tokenizer.ggml.model").and_then(Meta::as_str).unwrap_or("");
    if model != "gpt2" {
        return Err(err(format!("GGUF tokenizer model `{model}` is not supported (byte-level BPE `gpt2` is)")));
    }
    let strs = |key: &str| -> Result<Vec<String>> {
        g.meta
            .get(key)
            .and_then(Meta::as_array)
            .ok_or_else(|| err(format!("GGUF metadata `{key}` missing")))?
            .iter()
            .map(|m| m.as_str().map(str::to_string).ok_or_else(|| err(format!("`{key}` holds a non-string"))))
            .collect()
    };
    let tokens = strs("tokenizer.ggml.tokens")?;
    let merges = strs("tokenizer.ggml.merges")?;
    let types: Vec<i64> =
        g.meta.get("tokenizer.ggml.token_type").and_then(Meta::as_array).map(|a| a.iter().map(|m| m.as_i64().unwrap_or(1)).collect()).unwrap_or_default();
    let vocab: serde_json::Map<String, Value> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
    // Token types 3 (control) and 4 (user-defined) are matched whole, before BPE.
    let added: Vec<Value> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == 3 || **t == 4)
        .map(|(i, t)| {
            json!({"id": i, "content": tokens[i], "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": *t == 4, "special": *t == 3})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    // llama.cpp's "smollm" (and similar) pre-tokenizers split digits one by one before the
    // GPT-2 regex.
    let pre = match g.meta.get("tokenizer.ggml.pre").and_then(Meta::as_str).unwrap_or("default") {
        "smollm" | "starcoder" | "refact" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level]}),
        "default" | "gpt-2" | "gpt2" => byte_level.clone(),
        other => return Err(err(format!("GGUF pre-tokenizer `{other}` is not supported (smollm, gpt2 are)"))),
    };
    let spec = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": merges}
    });
    spec.to_string().parse::<Tokenizer>().map_err(|e| err(format!("cannot build tokenizer: {e}")))
}
