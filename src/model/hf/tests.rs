//! Unit tests of the reader's plumbing; the fixtures' figures are checked in
//! `tests/kvsim/hf.rs`.

use super::*;

fn parse_str(text: &str) -> Result<Imported, SpecError> {
    parse(&serde_json::from_str(text).unwrap(), "t")
}

#[test]
fn names_come_from_the_file_or_its_directory() {
    assert_eq!(name_of(Path::new("a/b/gemma-3-27b.json")), "gemma-3-27b");
    assert_eq!(
        name_of(Path::new("models/Llama-3.1-8B/config.json")),
        "Llama-3.1-8B"
    );
    assert_eq!(name_of(Path::new("config.json")), "config");
}

#[test]
fn an_unknown_architecture_lists_the_known_ones() {
    let e = parse_str(r#"{"architectures": ["FalconForCausalLM"]}"#).unwrap_err();
    assert_eq!(e.key, "architectures");
    assert!(
        e.reason.contains("`FalconForCausalLM` is not a family"),
        "{e}"
    );
    assert!(e.reason.contains("Qwen3NextForCausalLM"), "{e}");
    let e = parse_str(r#"{"model_type": "falcon"}"#).unwrap_err();
    assert_eq!(e.key, "model_type");
    let e = parse_str(r#"{"hidden_size": 1}"#).unwrap_err();
    assert_eq!(e.key, "architectures");
    assert!(e.reason.starts_with("missing"), "{e}");
    let e = parse_str("[1, 2]").unwrap_err();
    assert!(e.reason.contains("one JSON object"), "{e}");
}

#[test]
fn fields_of_the_wrong_type_are_named() {
    let e = parse_str(r#"{"architectures": ["LlamaForCausalLM"], "num_hidden_layers": "32"}"#)
        .unwrap_err();
    assert_eq!(e.key, "num_hidden_layers");
    assert!(e.reason.contains("expected a whole number"), "{e}");
    assert!(e.reason.contains("string \"32\""), "{e}");
    let e = parse_str(r#"{"architectures": ["LlamaForCausalLM"], "num_hidden_layers": null}"#)
        .unwrap_err();
    assert_eq!(e.to_string(), "`num_hidden_layers`: is null");
    let e = parse_str(r#"{"architectures": "LlamaForCausalLM"}"#).unwrap_err();
    assert!(e.reason.contains("expected a list"), "{e}");
}

#[test]
fn state_formulas_match_vllm_shapes() {
    // Qwen3-Next: conv 3 x (2*16*128 + 32*128) = 24,576; temporal 32*128*128
    // = 524,288; 548,864 elements of 2 bytes.
    assert_eq!(
        gated_delta_net_state_bytes(16, 32, 128, 128, 4, 2),
        Some(1_097_728)
    );
    // Nemotron-H-8B: conv 3 x (128*64 + 2*8*128) = 30,720 x 2 B; temporal
    // 128*64*128 = 1,048,576 x 4 B.
    assert_eq!(
        mamba2_state_bytes(128, 64, 128, 8, 4, 2, 4),
        Some(61_440 + 4_194_304)
    );
    assert_eq!(
        gated_delta_net_state_bytes(u32::MAX, u32::MAX, u32::MAX, u32::MAX, 4, 2),
        None
    );
}
