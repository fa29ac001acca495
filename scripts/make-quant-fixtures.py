#!/usr/bin/env python3
"""Build quantized replica checkpoints and their references: tiny random NemotronH models quantized with numpy
exactly as NVIDIA ModelOpt quantizes weights, written in ModelOpt's published forms, and what transformers produces
when it runs the dequantized weights.

Under Tests/NemotronTests/Fixtures/quant/:
  hybrid          float32 source, pattern M*E-ME (Mamba2, attention, MoE with group-limited routing, MLP)
  latent          float32 source, pattern ME*E- with LatentMoE (routed experts in a 32-wide latent space)
  hybrid-fp8      quant_algo FP8 in config.json's quantization_config (the current form: producer, config_groups,
                  kv_cache_scheme, ignore ["lm_head"]); every other linear F8_E4M3 with an F32 [] weight_scale and
                  input_scale; attention k_proj.k_scale / v_proj.v_scale
  hybrid-nvfp4    quant_algo NVFP4 in hf_quant_config.json (the older form: producer, quantization, exclude_modules);
                  attention kept float32 (wildcards), lm_head quantized as in 3.5-Lightning; U8 [rows, cols/2],
                  F8_E4M3 weight_scale [rows, cols/16], F32 [] weight_scale_2 and input_scale
  latent-mixed    quant_algo MIXED_PRECISION with quantized_layers: Mamba in/out_proj, q/k/v, MLP down, shared experts
                  and the latent projections FP8; o_proj, MLP up and routed experts NVFP4 (group_size 16); lm_head in
                  ignore and absent from quantized_layers
  hybrid-int8     nemotron-run's own int8 and int4 (its LM head int8), written by `nemotron-run quantize`
  hybrid-int4     (--nemotron-run, default .build/debug/nemotron-run) and dequantized here by this script's own
                  reading of the layout

Each quantized directory gets config.json (and hf_quant_config.json where that is the form), generation_config.json,
model.safetensors and reference.safetensors: prompt_ids I64 [T], prefill_logits F32 [T, V], greedy_ids I64 [N],
step_logits F32 [N, V] from transformers' NemotronHForCausalLM loaded with the dequantized weights in float32.

ModelOpt's arithmetic, read from its code (modelopt/torch/export/quant_utils.py `to_quantized_weight`,
modelopt/torch/quantization/qtensor/nvfp4_tensor.py `NVFP4QTensor`), all in float32:
  FP8    weight_scale = amax / 448; q = float8_e4m3fn(w / weight_scale); w' = e4m3(q) * weight_scale
  NVFP4  weight_scale_2 = amax / (6 * 448); per 16 inputs s = e4m3(clamp(blockmax / (6 * weight_scale_2), 2^-9)) (an
         all-zero block: 1); codes = e2m1(w / (e4m3(s) * weight_scale_2)) with searchsorted on the bounds
         [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5] plus one at 0.75, 1.75 and 3.5 (ties to the even code), sign bit 3;
         packed (q[1::2] << 4) | q[0::2]; w' = e2m1(c) * (e4m3(s) * weight_scale_2)
The numpy E4M3 rounding is checked against torch's cast on every tensor.

Weights are drawn as in scripts/make-reference.py; a seed is kept when every variant of its source has dt well
above time_step_min, MoE choices with margin and spread-out logits. Needs torch (CPU), transformers >= 5 and
safetensors, and the built nemotron-run for the int8 and int4 variants; the tests need none of them.
"""
import argparse, importlib.util, json, math, os, shutil, subprocess, sys, tempfile
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import NemotronHConfig, NemotronHForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.join(HERE, "..")
ROOT = os.path.join(REPO, "Tests", "NemotronTests", "Fixtures", "quant")


def load_script(name):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), os.path.join(HERE, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference_script = load_script("make-reference")
replica_script = load_script("make-replica-fixtures")

# ---------------------------------------------------------------------------------------------------------------
# ModelOpt's quantizers in numpy

F32 = np.float32
E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], dtype=F32)
E2M1_BOUNDS = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5], dtype=F32)


def e4m3_values():
    """The 256 E4M3FN values (0x7F / 0xFF NaN)."""
    codes = np.arange(256)
    sign = np.where(codes & 0x80, -1.0, 1.0)
    exponent, mantissa = (codes >> 3) & 0xF, codes & 7
    value = np.where(exponent == 0, mantissa * 2.0 ** -9, (1 + mantissa / 8) * 2.0 ** (exponent - 7))
    value = np.where((codes & 0x7F) == 0x7F, np.nan, value)
    return (sign * value).astype(F32)


E4M3 = e4m3_values()


def to_e4m3(x):
    """float32 -> E4M3FN bytes, nearest with ties to even; from 480 up NaN (0x7F), as torch's cast."""
    x = np.asarray(x, dtype=F32)
    sign = np.where(np.signbit(x), 0x80, 0).astype(np.uint8)
    a = np.abs(x)
    mant, exp = np.frexp(a)  # a = mant * 2^exp, mant in [0.5, 1)
    e = exp - 1  # a = (2 mant) * 2^e
    m = np.rint((2 * mant - 1) * 8)
    carry = m == 8
    e, m = np.where(carry, e + 1, e), np.where(carry, 0, m)
    normal = ((e + 7) << 3) | m.astype(np.int64)
    sub = np.rint(a * F32(512)).astype(np.int64)
    code = np.where(a < 2.0 ** -6, sub, normal)
    code = np.where((a >= 480) | np.isnan(a), 0x7F, code)
    out = (code.astype(np.uint8) | sign).astype(np.uint8)
    torch_bytes = torch.from_numpy(x.copy()).to(torch.float8_e4m3fn).view(torch.uint8).numpy()
    assert np.array_equal(out, torch_bytes), "numpy E4M3 rounding differs from torch's"
    return out


def to_e2m1(x):
    """ModelOpt's NVFP4QTensor._cast_fp4."""
    a = np.abs(x)
    code = np.searchsorted(E2M1_BOUNDS, a, side="left") + np.isin(a, E2M1_BOUNDS[[1, 3, 5]])
    return (code + np.where(x < 0, 8, 0)).astype(np.uint8)


def quantize_fp8(w):
    amax = np.abs(w).max()
    scale = F32(amax) / F32(448)
    q = to_e4m3(w / scale)
    return {"weight": q, "weight_scale": F32(scale)}, E4M3[q] * scale


def quantize_nvfp4(w):
    rows, cols = w.shape
    scale2 = F32(np.abs(w).max()) / F32(6 * 448)
    blocks = w.reshape(rows, cols // 16, 16)
    per_block = np.abs(blocks).max(-1) / (F32(6) * scale2)
    per_block = np.where(per_block == 0, F32(1), per_block)
    s = to_e4m3(np.maximum(per_block, F32(2.0 ** -9)))
    d = E4M3[s] * scale2
    codes = to_e2m1(blocks / d[..., None]).reshape(rows, cols)
    packed = (codes[:, 1::2] << 4) | codes[:, 0::2]
    dequantized = (E2M1[codes].reshape(rows, cols // 16, 16) * d[..., None]).reshape(rows, cols)
    return {"weight": packed.astype(np.uint8), "weight_scale": s, "weight_scale_2": F32(scale2)}, dequantized


def dequantize_nemotron_run(tensors, module):
    """nemotron-run's int8 (I8) / int4 (U8) layout, read independently of its code: f16 scales per 32 inputs; int4
    element 2j in the low nibble of byte j, 2j+1 in the high nibble, code c meaning c - 8."""
    data = tensors[module + ".weight"].numpy()
    scales = tensors[module + ".weight_scale"].numpy().astype(F32)
    if data.dtype == np.uint8:
        codes = np.empty((data.shape[0], data.shape[1] * 2), dtype=np.int64)
        codes[:, 0::2], codes[:, 1::2] = data & 0xF, data >> 4
        values = (codes - 8).astype(F32)
    else:
        values = data.astype(F32)
    rows, cols = values.shape
    return (values.reshape(rows, cols // 32, 32) * scales[..., None]).reshape(rows, cols)


# ---------------------------------------------------------------------------------------------------------------
# Models and variants

BASE = dict(reference_script.BASE)
MOE = dict(n_routed_experts=8, num_experts_per_tok=2, moe_intermediate_size=64, moe_shared_expert_intermediate_size=64,
           n_shared_experts=1, n_group=2, topk_group=1, routed_scaling_factor=2.5, norm_topk_prob=True)
LATENT = dict(n_routed_experts=8, num_experts_per_tok=3, moe_intermediate_size=64,
              moe_shared_expert_intermediate_size=64, n_shared_experts=1, n_group=1, topk_group=1,
              routed_scaling_factor=1.5, norm_topk_prob=True, moe_latent_size=32)
SOURCES = {
    "hybrid": dict(pattern="M*E-ME", prompt=12, new=6, extra=MOE),
    "latent": dict(pattern="ME*E-", prompt=12, new=6, extra=LATENT),
}
ATTENTION = ["*.mixer.q_proj", "*.mixer.k_proj", "*.mixer.v_proj", "*.mixer.o_proj"]


def mixed_algo(module):
    """latent-mixed's per-module formats (None: not quantized)."""
    leaf = module.split(".mixer.", 1)[-1] if ".mixer." in module else module
    if module == "lm_head":
        return None
    if leaf.startswith("experts."):
        return "NVFP4"
    if leaf in ("o_proj", "up_proj"):
        return "NVFP4"
    return "FP8"


VARIANTS = {
    "hybrid-fp8": dict(source="hybrid", algo="FP8", ignore=["lm_head"]),
    "hybrid-nvfp4": dict(source="hybrid", algo="NVFP4", ignore=ATTENTION),
    "latent-mixed": dict(source="latent", algo="MIXED_PRECISION", ignore=["lm_head"]),
    "hybrid-int8": dict(source="hybrid", algo="INT8"),
    "hybrid-int4": dict(source="hybrid", algo="INT4"),
}


def is_linear(name):
    """The weights nemotron-run treats as linear layers (WeightNames.isLinear)."""
    if name == "lm_head.weight":
        return True
    parts = name.split(".")
    if len(parts) < 5 or parts[0] != "backbone" or parts[1] != "layers" or not parts[-1] == "weight":
        return False
    leaf = ".".join(parts[3:])
    fixed = {"mixer." + p + ".weight" for p in ("in_proj", "out_proj", "q_proj", "k_proj", "v_proj", "o_proj",
                                                 "up_proj", "down_proj", "shared_experts.up_proj",
                                                 "shared_experts.down_proj", "fc1_latent_proj", "fc2_latent_proj")}
    return leaf in fixed or (len(parts) == 8 and parts[3:5] == ["mixer", "experts"] and parts[6] in ("up_proj",
                                                                                                       "down_proj"))


def ignored(module, patterns):
    import fnmatch
    return any(module == p or module.startswith(p + ".") or fnmatch.fnmatchcase(module, p) for p in patterns)


def modelopt_variant(tensors, spec):
    """(tensors to write, dequantized float32 tensors, quantized_layers) for a ModelOpt variant."""
    out, dequantized, layers = {}, {}, {}
    for name, t in tensors.items():
        module = name[:-len(".weight")]
        algo = None
        if is_linear(name) and not ignored(module, spec["ignore"]):
            algo = mixed_algo(module) if spec["algo"] == "MIXED_PRECISION" else spec["algo"]
        if algo is None:
            out[name], dequantized[name] = t, t
            continue
        w = t.numpy().astype(F32)
        parts, deq = (quantize_fp8 if algo == "FP8" else quantize_nvfp4)(w)
        for key, value in parts.items():
            tensor = torch.from_numpy(np.asarray(value).copy())
            if key == "weight" and algo == "FP8" or key == "weight_scale" and algo == "NVFP4":
                tensor = tensor.view(torch.float8_e4m3fn)
            out[f"{module}.{key}"] = tensor
        out[module + ".input_scale"] = torch.tensor(0.01, dtype=torch.float32)
        dequantized[name] = torch.from_numpy(deq.astype(F32))
        layers[module] = {"quant_algo": algo, **({"group_size": 16} if algo == "NVFP4" else {})}
    if spec["algo"] == "FP8":
        for name in list(out):
            if name.endswith("mixer.k_proj.weight"):
                layer = name[:-len("k_proj.weight")]
                out[layer + "k_proj.k_scale"] = torch.tensor(0.05, dtype=torch.float32)
                out[layer + "v_proj.v_scale"] = torch.tensor(0.04, dtype=torch.float32)
    return out, dequantized, layers


def nemotron_run_variant(binary, source_dir, tensors, spec):
    """The checkpoint `nemotron-run quantize` writes, and its weights dequantized here."""
    work = tempfile.mkdtemp()
    target = os.path.join(work, "q")
    subprocess.run([binary, "quantize", "--model", source_dir, "--out", target, "--format", spec["algo"].lower()],
                   check=True, stdout=subprocess.DEVNULL)
    written = load_file(os.path.join(target, "model.safetensors"))
    dequantized = {}
    for name in tensors:
        module = name[:-len(".weight")]
        if module + ".weight_scale" in written:
            dequantized[name] = torch.from_numpy(dequantize_nemotron_run(written, module))
        else:
            assert torch.equal(written[name], tensors[name]), name
            dequantized[name] = tensors[name]
    return target, dequantized


def quantization_files(name, spec, layers):
    """config.json's quantization_config (or None) and hf_quant_config.json's content (or None)."""
    producer = {"name": "modelopt", "version": "0.33.0"}
    if spec["algo"] == "FP8":
        return {"config_groups": {"group_0": {"input_activations": {"dynamic": False, "num_bits": 8, "type": "float"},
                                              "weights": {"dynamic": False, "num_bits": 8, "type": "float"},
                                              "targets": ["Linear"]}},
                "ignore": spec["ignore"], "kv_cache_scheme": {"dynamic": False, "num_bits": 8, "type": "float"},
                "producer": producer, "quant_algo": "FP8", "quant_method": "modelopt"}, None
    if spec["algo"] == "NVFP4":
        return None, {"producer": {"name": "modelopt", "version": "0.27.1"},
                      "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": None, "group_size": 16,
                                       "exclude_modules": spec["ignore"]}}
    assert spec["algo"] == "MIXED_PRECISION"
    return {"ignore": spec["ignore"], "producer": producer, "quant_algo": "MIXED_PRECISION",
            "quant_method": "modelopt", "quantized_layers": dict(sorted(layers.items()))}, None


def build_source(name, seed):
    spec = SOURCES[name]
    cfg, model, prompt = reference_script.build(name, spec, seed)
    return cfg, model, prompt


def run_reference(cfg, dequantized, prompt, spec):
    model = NemotronHForCausalLM(cfg).float().eval()
    model.load_state_dict(replica_script.engine_mapping(dequantized, ""), strict=True)
    probe, prefill, greedy, steps = reference_script.reference(cfg, model, prompt, spec)
    ok = probe.min_dt > 3 * cfg.time_step_min and probe.margin > 2e-3 and prefill.std(dim=-1).min().item() > 0.5
    return ok, (probe, prefill, greedy, steps)


def write_variant(d, source_dir, tensors, quantization, legacy, reference, prompt):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(source_dir, "config.json")) as f:
        config = json.load(f)
    if quantization is not None:
        config = {"quantization_config": quantization, **config}
    replica_script.dump_json(os.path.join(d, "config.json"), config)
    if legacy is not None:
        replica_script.dump_json(os.path.join(d, "hf_quant_config.json"), legacy)
    shutil.copy(os.path.join(source_dir, "generation_config.json"), d)
    save_file({n: t.contiguous() for n, t in sorted(tensors.items())}, os.path.join(d, "model.safetensors"),
              metadata={"format": "pt"})
    _, prefill, greedy, steps = reference
    save_file({"prompt_ids": prompt[0].to(torch.int64).contiguous(), "prefill_logits": prefill.contiguous(),
               "greedy_ids": greedy.to(torch.int64).contiguous(), "step_logits": steps.contiguous()},
              os.path.join(d, "reference.safetensors"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nemotron-run", default=os.path.join(REPO, ".build", "debug", "nemotron-run"))
    parser.add_argument("sources", nargs="*", default=list(SOURCES))
    args = parser.parse_args()
    os.makedirs(ROOT, exist_ok=True)
    for source in args.sources:
        spec = SOURCES[source]
        variants = {n: v for n, v in VARIANTS.items() if v["source"] == source}
        for seed in range(1, 60):
            cfg, model, prompt = build_source(source, seed)
            source_dir = os.path.join(ROOT, source)
            shutil.rmtree(source_dir, ignore_errors=True)
            model.save_pretrained(source_dir)
            tensors = load_file(os.path.join(source_dir, "model.safetensors"))
            results, ok = {}, True
            for name, variant in variants.items():
                if variant["algo"] in ("INT8", "INT4"):
                    written, dequantized = nemotron_run_variant(args.nemotron_run, source_dir, tensors, variant)
                    files = (written, None, None)
                else:
                    out, dequantized, layers = modelopt_variant(tensors, variant)
                    config, legacy = quantization_files(name, variant, layers)
                    files = (out, config, legacy)
                good, reference = run_reference(cfg, dequantized, prompt, spec)
                ok = ok and good
                results[name] = (files, reference)
                if not good:
                    print(f"{source}: seed {seed} rejected by {name} (min dt {reference[0].min_dt:.4g}, "
                          f"margin {reference[0].margin:.3g})")
                    break
            if ok:
                break
        else:
            sys.exit(f"{source}: no seed satisfied the constraints")
        for name, (files, reference) in results.items():
            d = os.path.join(ROOT, name)
            if isinstance(files[0], str):
                written = files[0]
                shutil.rmtree(d, ignore_errors=True)
                shutil.copytree(written, d)
                _, prefill, greedy, steps = reference
                save_file({"prompt_ids": prompt[0].to(torch.int64).contiguous(), "prefill_logits": prefill.contiguous(),
                           "greedy_ids": greedy.to(torch.int64).contiguous(), "step_logits": steps.contiguous()},
                          os.path.join(d, "reference.safetensors"))
            else:
                write_variant(d, source_dir, files[0], files[1], files[2], reference, prompt)
            probe, _, greedy, _ = reference
            size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
            print(f"{name}: seed {seed}, min dt {probe.min_dt:.4g}, margin {probe.margin:.3g}, "
                  f"greedy {greedy.tolist()}, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
