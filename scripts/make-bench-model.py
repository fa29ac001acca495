#!/usr/bin/env python3
"""Write a random-weight bf16 Nemotron-H checkpoint for benchmarks (numpy only, no torch).

  scripts/make-bench-model.py [--preset dense-0.74b] [--out models/bench-0.74b]
  scripts/make-bench-model.py --preset tiny --out models/tiny \
      --tokenizer Tests/NemotronTests/Fixtures/tokenizers/llama3-style

dense-0.74b: hidden 2048, 24 layers M-M-M*-M-M-M*-M-M-M*-M-M, 16 q / 4 kv heads of 128,
64 Mamba heads of 64, state 128, 8 groups, conv 4, MLP 6144, vocab 32000, untied head:
about 0.74 B parameters, 1.48 GB. Weights are N(0, 1/fan_in) so activations stay O(1);
A_log, D, dt_bias and the router correction bias are F32 as in real exports, the rest BF16.
Tensors are streamed to disk one at a time, so memory stays small.
moe-bench: hidden 1024, `MEM*EMEM`, 32 experts top-4 of width 512, shared expert 1024 (0.21 B
parameters), for comparing attention data parallelism with tensor parallelism.
dense-8b: Nemotron-H-8B's shapes (hidden 4096, 52 layers, MLP 21504, vocab 131072, untied): about
8.1 B parameters, 16.2 GB, for measuring decode against the read bandwidth on a many-core host.
tiny: the default-run checkpoint shipped in the repo (hidden 64, `M-M*M-`, vocab 1200 to
match the tokenizer copied in with --tokenizer); random weights, so its text is gibberish.
"""
import argparse, json, os, shutil
import numpy as np

PRESETS = {
    "moe-bench": dict(
        hidden_size=1024, hybrid_override_pattern="MEM*EMEM", num_attention_heads=8, num_key_value_heads=2, head_dim=128,
        mamba_num_heads=32, mamba_head_dim=64, ssm_state_size=128, n_groups=8, conv_kernel=4, intermediate_size=1024,
        vocab_size=32000, n_routed_experts=32, num_experts_per_tok=4, moe_intermediate_size=512,
        moe_shared_expert_intermediate_size=1024, n_shared_experts=1, n_group=1, topk_group=1, routed_scaling_factor=1.0,
        norm_topk_prob=True),
    "tiny": dict(
        hidden_size=64, hybrid_override_pattern="M-M*M-", num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        mamba_num_heads=8, mamba_head_dim=8, ssm_state_size=16, n_groups=2, conv_kernel=4, intermediate_size=128,
        vocab_size=1200),
    "dense-8b": dict(
        hidden_size=4096, hybrid_override_pattern="M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-",
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, mamba_num_heads=128, mamba_head_dim=64,
        ssm_state_size=128, n_groups=8, conv_kernel=4, intermediate_size=21504, vocab_size=131072),
    "dense-0.74b": dict(
        hidden_size=2048, hybrid_override_pattern="M-M-M*-M-M-M*-M-M-M*-M-M", num_attention_heads=16,
        num_key_value_heads=4, head_dim=128, mamba_num_heads=64, mamba_head_dim=64, ssm_state_size=128,
        n_groups=8, conv_kernel=4, intermediate_size=6144, vocab_size=32000),
}


def tensors(c):
    """(name, shape, dtype, kind) for every weight, in file order."""
    H, V = c["hidden_size"], c["vocab_size"]
    nh, P, N, G, K = c["mamba_num_heads"], c["mamba_head_dim"], c["ssm_state_size"], c["n_groups"], c["conv_kernel"]
    Di = nh * P
    Dc, Dp = Di + 2 * G * N, 2 * Di + 2 * G * N + nh
    hq, hkv, dh = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    out = [("backbone.embeddings.weight", [V, H], "BF16", "embed")]
    for i, kind in enumerate(c["hybrid_override_pattern"]):
        p = f"backbone.layers.{i}."
        out.append((p + "norm.weight", [H], "BF16", "norm"))
        if kind == "M":
            out += [(p + "mixer.in_proj.weight", [Dp, H], "BF16", "linear"),
                    (p + "mixer.conv1d.weight", [Dc, 1, K], "BF16", "conv"),
                    (p + "mixer.conv1d.bias", [Dc], "BF16", "small"),
                    (p + "mixer.dt_bias", [nh], "F32", "dt_bias"),
                    (p + "mixer.A_log", [nh], "F32", "A_log"),
                    (p + "mixer.D", [nh], "F32", "small"),
                    (p + "mixer.norm.weight", [Di], "BF16", "norm"),
                    (p + "mixer.out_proj.weight", [H, Di], "BF16", "linear")]
        elif kind == "*":
            out += [(p + "mixer.q_proj.weight", [hq * dh, H], "BF16", "linear"),
                    (p + "mixer.k_proj.weight", [hkv * dh, H], "BF16", "linear"),
                    (p + "mixer.v_proj.weight", [hkv * dh, H], "BF16", "linear"),
                    (p + "mixer.o_proj.weight", [H, hq * dh], "BF16", "linear")]
        elif kind == "E":
            E, Im, Is = c["n_routed_experts"], c["moe_intermediate_size"], c["moe_shared_expert_intermediate_size"]
            out += [(p + "mixer.gate.weight", [E, H], "F32", "linear"),
                    (p + "mixer.gate.e_score_correction_bias", [E], "F32", "bias")]
            for e in range(E):
                out += [(p + f"mixer.experts.{e}.up_proj.weight", [Im, H], "BF16", "linear"),
                        (p + f"mixer.experts.{e}.down_proj.weight", [H, Im], "BF16", "linear")]
            out += [(p + "mixer.shared_experts.up_proj.weight", [Is, H], "BF16", "linear"),
                    (p + "mixer.shared_experts.down_proj.weight", [H, Is], "BF16", "linear")]
        elif kind == "-":
            out += [(p + "mixer.up_proj.weight", [c["intermediate_size"], H], "BF16", "linear"),
                    (p + "mixer.down_proj.weight", [H, c["intermediate_size"]], "BF16", "linear")]
        else:
            raise SystemExit(f"pattern character {kind!r} is not supported by this script")
    out += [("backbone.norm_f.weight", [H], "BF16", "norm"), ("lm_head.weight", [V, H], "BF16", "linear")]
    return out


def values(rng, shape, kind):
    n = int(np.prod(shape))
    if kind == "norm":
        return 1 + 0.1 * rng.standard_normal(n, dtype=np.float32)
    if kind == "A_log":
        return np.log(rng.uniform(1, 16, n)).astype(np.float32)
    if kind == "dt_bias":
        return np.log(np.expm1(rng.uniform(0.01, 0.1, n))).astype(np.float32)
    if kind == "bias":
        return 0.01 * rng.standard_normal(n, dtype=np.float32)
    if kind == "embed":
        return rng.standard_normal(n, dtype=np.float32)
    fan_in = shape[-1]
    return rng.standard_normal(n, dtype=np.float32) / np.float32(np.sqrt(fan_in))


def bf16(x):
    """Round-to-nearest-even float32 -> bfloat16 bits."""
    bits = x.view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="dense-0.74b", choices=sorted(PRESETS))
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", default=None, help="copy tokenizer.json and tokenizer_config.json from this directory")
    args = ap.parse_args()
    cfg = dict(PRESETS[args.preset])
    out = args.out or os.path.join(os.path.dirname(__file__), "..", "models", "bench-" + args.preset.split("-", 1)[-1])
    os.makedirs(out, exist_ok=True)
    entries = tensors(cfg)
    header, offset = {}, 0
    for name, shape, dtype, _ in entries:
        size = int(np.prod(shape)) * (2 if dtype == "BF16" else 4)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(args.seed)
    path = os.path.join(out, "model.safetensors")
    with open(path + ".tmp", "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for name, shape, dtype, kind in entries:
            v = values(rng, shape, kind)
            f.write((bf16(v) if dtype == "BF16" else v).tobytes())
    os.replace(path + ".tmp", path)
    config = dict(cfg, model_type="nemotron_h", architectures=["NemotronHForCausalLM"], layer_norm_epsilon=1e-5,
                  chunk_size=128, use_conv_bias=True, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                  pad_token_id=0, time_step_limit=[0.0, {"__float__": "Infinity"}], dtype="bfloat16")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}, f, indent=2)
    eos = 2
    if args.tokenizer:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(args.tokenizer, name), os.path.join(out, name))
        tok = json.load(open(os.path.join(args.tokenizer, "tokenizer.json")))
        eos_name = json.load(open(os.path.join(args.tokenizer, "tokenizer_config.json")))["eos_token"]
        eos = next(t["id"] for t in tok["added_tokens"] if t["content"] == eos_name)
        with open(os.path.join(out, "generation_config.json"), "w") as f:
            json.dump({"eos_token_id": eos}, f, indent=2)
    params = sum(int(np.prod(s)) for _, s, _, _ in entries)
    print(f"{out}: {params / 1e9:.3f} B parameters, {os.path.getsize(path) / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
