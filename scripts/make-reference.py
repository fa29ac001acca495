#!/usr/bin/env python3
"""Build tiny random Nemotron-H checkpoints with transformers' native NemotronHForCausalLM and
write the reference outputs the engine is tested against.

Each fixture directory under Tests/NemotronTests/Fixtures/<name>/ gets:
  config.json, generation_config.json, model.safetensors (or shards + index),
  reference.safetensors with
    prompt_ids    I64 [T]            the prompt
    prefill_logits F32 [T, V]        one prefill over the prompt
    greedy_ids    I64 [N]            HF greedy generate
    step_logits   F32 [N, V]         row s chose greedy_ids[s]; rows >= 1 come from HF's decode path
    experts.<i>   I64 [T, k]         sorted expert ids chosen at MoE layer i during prefill

Weights are drawn so that activations are O(1) (std 1/sqrt(fan_in)), dt stays well above
time_step_min (transformers' CPU prefill clamps there, the real kernels do not) and MoE
choices have a clear margin. The script asserts both and tries the next seed otherwise.
Needs torch (CPU wheel) and transformers >= 5; the tests do not.
"""
import json, math, os, shutil, sys
import torch
from safetensors.torch import save_file
from transformers import NemotronHConfig, NemotronHForCausalLM

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "NemotronTests", "Fixtures")

BASE = dict(
    vocab_size=512, hidden_size=64, num_attention_heads=8, num_key_value_heads=2, head_dim=16,
    mamba_num_heads=16, mamba_head_dim=8, ssm_state_size=16, n_groups=2, conv_kernel=4,
    chunk_size=8, intermediate_size=128, layer_norm_epsilon=1e-5, tie_word_embeddings=False,
    bos_token_id=1, eos_token_id=2, pad_token_id=0, time_step_min=0.001,
)

FIXTURES = {
    # dense hybrid: Mamba, attention and MLP layers; prompt (20) longer than chunk_size (8)
    "dense": dict(pattern="M-M*M-*M", prompt=20, new=8, extra={}),
    # MoE: shared expert, correction bias, group-limited routing (n_group 2, topk_group 1)
    "moe": dict(pattern="ME*EM-E", prompt=12, new=6, shards=2, extra=dict(
        n_routed_experts=8, num_experts_per_tok=2, moe_intermediate_size=32,
        moe_shared_expert_intermediate_size=48, n_shared_experts=1, n_group=2, topk_group=1,
        routed_scaling_factor=2.5, norm_topk_prob=True)),
    # LatentMoE: routed experts run in a 32-wide latent space
    "latent-moe": dict(pattern="MEM*E", prompt=12, new=6, extra=dict(
        n_routed_experts=8, num_experts_per_tok=3, moe_intermediate_size=24,
        moe_shared_expert_intermediate_size=40, n_shared_experts=1, n_group=1, topk_group=1,
        routed_scaling_factor=1.5, norm_topk_prob=True, moe_latent_size=32)),
    # bf16 copy of the dense weights; reference computed in fp32 from the bf16-rounded weights
    "dense-bf16": dict(pattern="M-M*M-*M", prompt=20, new=8, extra={}, bf16=True),
}


def randomize(model, cfg, gen):
    """O(1) activations; dt = softplus(dt_raw + dt_bias) in about [0.01, 0.5]."""
    for name, p in model.named_parameters():
        with torch.no_grad():
            if name.endswith("A_log"):
                p.copy_(torch.log(torch.rand(p.shape, generator=gen) * 7 + 1))
            elif name.endswith("dt_bias"):
                dt0 = torch.rand(p.shape, generator=gen) * 0.15 + 0.05
                p.copy_(torch.log(torch.expm1(dt0)))
            elif name.endswith(".D"):
                p.copy_(torch.randn(p.shape, generator=gen))
            elif "norm" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("e_score_correction_bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif p.dim() >= 2:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
        if name.endswith("in_proj.weight"):
            nh = cfg.mamba_num_heads
            with torch.no_grad():
                p[-nh:] *= 0.5  # keep dt_raw small so dt never nears time_step_min
    for name, b in model.named_buffers():
        if name.endswith("e_score_correction_bias"):
            with torch.no_grad():
                b.copy_(0.3 * torch.randn(b.shape, generator=gen))


class Probe:
    """Records min dt per Mamba layer and routing margins per MoE layer through hooks."""

    def __init__(self, model, cfg):
        self.min_dt, self.margin, self.experts, self.hooks = math.inf, math.inf, {}, []
        self.recording = False
        for i, layer in enumerate(model.model.layers):
            m = layer.mixer
            if layer.block_type == "linear_attention":
                self.hooks.append(m.in_proj.register_forward_hook(self._dt_hook(m, cfg)))
            elif layer.block_type == "moe":
                self.hooks.append(m.gate.register_forward_hook(self._gate_hook(m.gate, i)))

    def _dt_hook(self, mixer, cfg):
        def hook(_mod, _inp, out):
            dt = torch.nn.functional.softplus(out[..., -cfg.mamba_num_heads:] + mixer.dt_bias)
            self.min_dt = min(self.min_dt, dt.min().item())
        return hook

    def _gate_hook(self, gate, layer):
        def hook(_mod, inp, out):
            x = inp[0].reshape(-1, gate.hidden_dim).float()
            s = torch.sigmoid(x @ gate.weight.float().T) + gate.e_score_correction_bias
            g = s.view(-1, gate.num_group, gate.num_experts // gate.num_group)
            gs = g.topk(2, dim=-1)[0].sum(-1)
            if gate.num_group > gate.topk_group:
                top = gs.sort(dim=-1, descending=True)[0]
                self.margin = min(self.margin, (top[:, gate.topk_group - 1] - top[:, gate.topk_group]).min().item())
            keep = gs.topk(gate.topk_group, dim=-1)[1]
            mask = torch.zeros_like(gs).scatter_(1, keep, 1).bool()
            s = s.masked_fill(~mask.repeat_interleave(gate.num_experts // gate.num_group, dim=1), -math.inf)
            top = s.sort(dim=-1, descending=True)[0]
            k = gate.top_k
            finite = top[:, k].isfinite()
            if finite.any():
                self.margin = min(self.margin, (top[finite, k - 1] - top[finite, k]).min().item())
            if self.recording:
                self.experts[layer] = out[2].sort(dim=-1)[0].to(torch.int64).clone()
        return hook


def build(name, spec, seed):
    kwargs = dict(BASE, **spec["extra"])
    kwargs["hybrid_override_pattern"] = spec["pattern"]
    cfg = NemotronHConfig(**kwargs)
    torch.manual_seed(seed)
    model = NemotronHForCausalLM(cfg).float().eval()
    gen = torch.Generator().manual_seed(seed)
    randomize(model, cfg, gen)
    if spec.get("bf16"):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(torch.bfloat16).float())
    prompt = torch.randint(3, cfg.vocab_size, (1, spec["prompt"]), generator=gen)
    return cfg, model, prompt


def reference(cfg, model, prompt, spec):
    probe = Probe(model, cfg)
    with torch.no_grad():
        probe.recording = True
        prefill = model(prompt).logits[0].float()
        probe.recording = False
        out = model.generate(prompt, max_new_tokens=spec["new"], do_sample=False,
                             output_logits=True, return_dict_in_generate=True,
                             eos_token_id=cfg.eos_token_id, pad_token_id=cfg.pad_token_id)
    for h in probe.hooks:
        h.remove()
    greedy = out.sequences[0, prompt.shape[1]:]
    steps = torch.stack([l[0].float() for l in out.logits])
    return probe, prefill, greedy, steps


def write(name, spec, cfg, model, prompt, prefill, greedy, steps, experts):
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    dtype = torch.bfloat16 if spec.get("bf16") else torch.float32
    model.to(dtype).save_pretrained(d, max_shard_size="400KB" if spec.get("shards") else "1GB")
    if spec.get("shards"):
        files = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
        assert len(files) >= 2, files
    tensors = {"prompt_ids": prompt[0].to(torch.int64), "prefill_logits": prefill.contiguous(),
               "greedy_ids": greedy.to(torch.int64).contiguous(), "step_logits": steps.contiguous()}
    for layer, ids in experts.items():
        tensors[f"experts.{layer}"] = ids[:prompt.shape[1]].contiguous()
    save_file(tensors, os.path.join(d, "reference.safetensors"))


def main():
    names = sys.argv[1:] or list(FIXTURES)
    for name in names:
        spec = FIXTURES[name]
        for seed in range(1, 50):
            cfg, model, prompt = build(name, spec, seed)
            probe, prefill, greedy, steps = reference(cfg, model, prompt, spec)
            ok_dt = probe.min_dt > 3 * cfg.time_step_min
            ok_moe = probe.margin > 2e-3
            spread = prefill.std(dim=-1).min().item()
            if ok_dt and ok_moe and spread > 0.5:
                break
            print(f"{name}: seed {seed} rejected (min dt {probe.min_dt:.4g}, margin {probe.margin:.3g}, spread {spread:.3g})")
        else:
            sys.exit(f"{name}: no seed satisfied the constraints")
        write(name, spec, cfg, model, prompt, prefill, greedy, steps, probe.experts)
        print(f"{name}: seed {seed}, min dt {probe.min_dt:.4g}, routing margin {probe.margin:.3g}, "
              f"logit std {spread:.3g}, greedy {greedy.tolist()}")


if __name__ == "__main__":
    main()
