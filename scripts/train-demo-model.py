#!/usr/bin/env python3
"""Train the demo Nemotron-H checkpoints shipped in models/demo-dense and models/demo-moe.

Two stages, each reproducible from its arguments (everything is seeded and recorded):

  scripts/train-demo-model.py prepare --out DATA [--corpus DIR] [--seed 1234]
      Reads the reStructuredText sources of the Python 3.11 documentation (Debian package
      python3.11-doc: /usr/share/doc/python3.11/html/_sources, *.rst.txt), holds out ~5% of the
      files (by bytes) as a validation split that is never trained on, trains one byte-level BPE
      tokenizer on the training files only (8192 ids, Llama-3 split regex, <unk> <s> </s>
      <|im_start|> <|im_end|> as ids 0-4) and writes DATA/{tokenizer.json, tokenizer_config.json,
      splits.json, validation.txt, train.npz, val.npz}. CPU only, about a minute.

  scripts/train-demo-model.py train --data DATA --preset dense|moe --out DIR [--steps N ...]
      Trains transformers' NemotronHForCausalLM (bf16 autocast on CUDA, fp32 master weights,
      no cache) on documents packed as <s> doc </s> into blocks of --seq-len tokens; each epoch
      re-packs the training documents in a fresh seeded order. Writes a checkpoint directory in
      the published on-disk form (backbone.* names, one tensor per routed expert, BF16 weights
      with F32 A_log / D / dt_bias / router weight / correction bias), plus training.json
      (seed, hyperparameters, data order, versions, timings, final losses, dt statistics) and
      loss.csv (train and validation loss every --eval-every steps).

Mamba dt: transformers 5.17 clamps softplus(dt + dt_bias) below at config.time_step_min in every
path (it ignores time_step_limit), newer transformers and nemotron-run clamp only at
time_step_limit (here [0, inf]: no clamp). Training runs with the clamp removed (each mixer's
time_step_limit = (0, inf)), so the weights never relied on it, and the saved config sets
time_step_min = 1e-5 so that 5.17's clamp stays inert. Because transformers also uses
time_step_min as the low end of the dt_bias initialisation, dt_bias is re-initialised here as in
mamba_ssm (dt log-uniform in [1e-3, 1e-1], seeded). After training, the dt distribution over the
validation blocks (min, quantiles, fraction below time_step_min and 1e-3) goes to training.json.

MoE: the router's e_score_correction_bias is a buffer, not a parameter; it is trained with the
auxiliary-loss-free balancing rule of DeepSeek-V3 (after each step, bias += rate * sign(mean load
- load) per expert), so the shipped bias is non-trivial.
"""
import argparse, hashlib, json, math, os, platform, sys, time

import numpy as np

CORPUS = "/usr/share/doc/python3.11/html/_sources"
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SPECIAL = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

COMMON = dict(
    vocab_size=8192, hidden_size=384, num_attention_heads=8, num_key_value_heads=2, head_dim=48,
    mamba_num_heads=12, mamba_head_dim=64, ssm_state_size=32, n_groups=4, conv_kernel=4, chunk_size=128,
    intermediate_size=768, layer_norm_epsilon=1e-5, time_step_min=1e-5, time_step_max=0.1, time_step_floor=1e-4,
    time_step_limit=(0.0, float("inf")), tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    use_cache=True, initializer_range=0.02, rescale_prenorm_residual=True, residual_in_fp32=False,
    max_position_embeddings=4096,
)
PRESETS = {
    # 13.4 M parameters: 4 Mamba2, 4 relu² MLP, 2 attention layers.
    "dense": dict(COMMON, hybrid_override_pattern="M-M*-M-M*-"),
    # 14.2 M parameters: 3 Mamba2, 3 MoE (16 experts of width 96, top-4 from the best 2 of 4 groups,
    # sigmoid router with correction bias, shared expert 256, scaling 2.5), 2 attention layers.
    "moe": dict(COMMON, hybrid_override_pattern="ME*MEM*E", n_routed_experts=16, num_experts_per_tok=4,
                moe_intermediate_size=96, moe_shared_expert_intermediate_size=256, n_shared_experts=1, n_group=4,
                topk_group=2, routed_scaling_factor=2.5, norm_topk_prob=True),
}
DT_INIT = (1e-3, 1e-1)
F32_SUFFIXES = ("A_log", "D", "dt_bias", "mixer.gate.weight", "e_score_correction_bias")


def jsonable(v):
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return "Infinity" if isinstance(v, float) and math.isinf(v) else v


def log(*args):
    print(*args, flush=True)


# ----------------------------------------------------------------------------------------------
# prepare

def read_corpus(root):
    files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
                   if f.endswith(".txt"))
    docs = {}
    for rel in files:
        with open(os.path.join(root, rel), "rb") as f:
            docs[rel] = f.read().decode("utf-8")
    return docs


def split_files(docs, fraction):
    """Validation = the files first in order of sha256(path), until `fraction` of the bytes."""
    total = sum(len(t.encode()) for t in docs.values())
    order = sorted(docs, key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    val, size = [], 0
    for path in order:
        if size >= fraction * total:
            break
        val.append(path)
        size += len(docs[path].encode())
    val_set = set(val)
    return sorted(p for p in docs if p not in val_set), sorted(val)


def train_tokenizer(texts, vocab_size):
    from tokenizers import Tokenizer, Regex, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    # tokenizer(text) prepends <s>, as Nemotron-H's tokenizers do through their post-processor.
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    for i, name in enumerate(SPECIAL):
        assert tok.token_to_id(name) == i, (name, tok.token_to_id(name))
    return tok


def tokenizer_config(model_max_length):
    added = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                      "special": True} for i, t in enumerate(SPECIAL)}
    return {
        "add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": added,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>",
        "clean_up_tokenization_spaces": False, "model_max_length": model_max_length,
        "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": CHAT_TEMPLATE,
    }


def encode_docs(tok, texts):
    """Concatenated <s> doc </s> ids (uint16) and each document's start offset."""
    ids = [[1] + e.ids + [2] for e in tok.encode_batch(texts, add_special_tokens=False)]
    offsets = np.cumsum([0] + [len(x) for x in ids]).astype(np.int64)
    return np.concatenate([np.asarray(x, dtype=np.uint16) for x in ids]), offsets


def prepare(args):
    import tokenizers
    t0 = time.time()
    docs = read_corpus(args.corpus)
    if not docs:
        sys.exit(f"no *.txt files under {args.corpus}: apt-get install python3.11-doc")
    train_files, val_files = split_files(docs, args.val_fraction)
    log(f"{len(docs)} files, {sum(len(t.encode()) for t in docs.values())} bytes; "
        f"train {len(train_files)} files, validation {len(val_files)} files")
    tok = train_tokenizer([docs[p] for p in train_files], args.vocab_size)
    os.makedirs(args.out, exist_ok=True)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(args.model_max_length), f, indent=2)
    train_ids, train_off = encode_docs(tok, [docs[p] for p in train_files])
    val_ids, val_off = encode_docs(tok, [docs[p] for p in val_files])
    np.savez(os.path.join(args.out, "train.npz"), ids=train_ids, offsets=train_off)
    np.savez(os.path.join(args.out, "val.npz"), ids=val_ids, offsets=val_off)
    # The validation text for perplexity: the held-out files joined by blank lines.
    with open(os.path.join(args.out, "validation.txt"), "w") as f:
        f.write("\n\n".join(docs[p] for p in val_files))
    sha = {p: hashlib.sha256(docs[p].encode()).hexdigest() for p in docs}
    splits = {
        "corpus": args.corpus, "debian_package": "python3.11-doc", "seed": args.seed,
        "rule": f"validation = files in order of sha256(relative path), taken until {args.val_fraction:.0%} of the bytes",
        "train_files": train_files, "validation_files": val_files, "sha256": sha,
        "train_bytes": sum(len(docs[p].encode()) for p in train_files),
        "validation_bytes": sum(len(docs[p].encode()) for p in val_files),
        "train_tokens": int(len(train_ids)), "validation_tokens": int(len(val_ids)),
        "tokenizer": {"vocab_size": tok.get_vocab_size(), "split_regex": LLAMA3, "special_tokens": SPECIAL,
                      "tokenizers_version": tokenizers.__version__, "min_frequency": 2},
        "validation_text": "validation.txt = the validation files, in listed order, joined by '\\n\\n'",
    }
    with open(os.path.join(args.out, "splits.json"), "w") as f:
        json.dump(splits, f, indent=1)
    log(f"tokenizer {tok.get_vocab_size()} ids; train {len(train_ids)} tokens, validation {len(val_ids)} tokens; "
        f"{(splits['train_bytes'] / len(train_ids)):.2f} bytes/token; {time.time() - t0:.1f}s")


# ----------------------------------------------------------------------------------------------
# train

def pack(ids, offsets, order, seq_len):
    """Documents in `order`, concatenated, cut into [n, seq_len] blocks (the tail is dropped)."""
    stream = np.concatenate([ids[offsets[i]:offsets[i + 1]] for i in order])
    n = len(stream) // seq_len
    return stream[: n * seq_len].reshape(n, seq_len).astype(np.int64)


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def causal_conv1d_shifted(hidden_states, weight, bias=None, activation=None, **kwargs):
    """transformers' reference causal depthwise conv as K shifted multiply-adds (in fp32): the same
    function, much faster to train than the cuDNN depthwise conv1d. hidden_states [B, C, T], weight [C, K]."""
    import torch.nn.functional as F
    k_size, t = weight.shape[-1], hidden_states.shape[-1]
    x = F.pad(hidden_states.float(), (k_size - 1, 0))
    w = weight.float()
    out = sum(x[:, :, k: k + t] * w[:, k, None] for k in range(k_size))
    if bias is not None:
        out = out + bias.float()[:, None]
    if activation is not None:
        out = F.silu(out) if activation in ("silu", "swish") else getattr(F, activation)(out)
    return out.to(hidden_states.dtype)


def on_disk_state(model):
    """State dict in the published on-disk form: backbone.*, one tensor per routed expert."""
    import torch
    out = {}
    for name, t in model.state_dict().items():
        name = "backbone." + name[len("model."):] if name.startswith("model.") else name
        t = t.detach().float().cpu()
        if name.endswith("mixer.experts.up_proj") or name.endswith("mixer.experts.down_proj"):
            base, proj = name.rsplit(".", 1)
            for e in range(t.shape[0]):
                out[f"{base}.{e}.{proj}.weight"] = t[e].contiguous()
            continue
        out[name] = t
    return {k: (v if k.endswith(F32_SUFFIXES) else v.to(torch.bfloat16)).contiguous() for k, v in out.items()}


def save_checkpoint(model, config, data_dir, out):
    import shutil, torch
    from safetensors.torch import save_file
    os.makedirs(out, exist_ok=True)
    config.dtype = torch.bfloat16
    config.save_pretrained(out)
    gen = {"bos_token_id": 1, "eos_token_id": [2, 4], "pad_token_id": 0, "do_sample": False}
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
    save_file(on_disk_state(model), os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    for name in ("tokenizer.json", "tokenizer_config.json", "splits.json", "validation.txt"):
        shutil.copy(os.path.join(data_dir, name), os.path.join(out, name))


def train(args):
    import torch
    import torch.nn.functional as F
    import transformers
    from transformers import NemotronHConfig, NemotronHForCausalLM

    t_start = time.time()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    tr = np.load(os.path.join(args.data, "train.npz"))
    va = np.load(os.path.join(args.data, "val.npz"))
    n_docs = len(tr["offsets"]) - 1
    splits_train_tokens = len(tr["ids"])
    val_blocks = torch.from_numpy(pack(va["ids"], va["offsets"], range(len(va["offsets"]) - 1), args.seq_len))
    if args.val_blocks:
        val_blocks = val_blocks[: args.val_blocks]

    if args.fast_conv:
        import transformers.models.nemotron_h.modeling_nemotron_h as modeling
        modeling.causal_conv1d_fn = causal_conv1d_shifted
    preset = dict(PRESETS[args.preset])
    for kv in args.override or []:
        k, v = kv.split("=", 1)
        preset[k] = json.loads(v)
    config = NemotronHConfig(**preset)
    model = NemotronHForCausalLM(config)
    dt_gen = torch.Generator().manual_seed(args.seed)
    for layer in model.model.layers:
        if hasattr(layer.mixer, "time_step_limit"):
            layer.mixer.time_step_limit = (0.0, float("inf"))  # no dt clamp in training (see the docstring)
            with torch.no_grad():
                nh = layer.mixer.dt_bias.numel()
                dt = torch.exp(torch.rand(nh, generator=dt_gen) * (math.log(DT_INIT[1]) - math.log(DT_INIT[0]))
                               + math.log(DT_INIT[0]))
                layer.mixer.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"preset {args.preset}: {config.hybrid_override_pattern}, {n_params / 1e6:.2f} M parameters, device {device}, "
        f"experts implementation {getattr(config, '_experts_implementation', None)}")

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=device.type == "cuda")

    # MoE: count each router's expert choices for the bias update.
    routers, loads = [], []
    for layer in model.model.layers:
        gate = getattr(layer.mixer, "gate", None)
        if gate is not None and hasattr(gate, "e_score_correction_bias"):
            routers.append(gate)
            loads.append(torch.zeros(gate.num_experts, device=device))

            def hook(module, inputs, output, k=len(routers) - 1):
                if module.training:
                    idx = output[2].flatten()
                    loads[k].scatter_add_(0, idx, torch.ones_like(idx, dtype=loads[k].dtype))
            gate.register_forward_hook(hook)

    forward = model
    if args.compile:
        forward = torch.compile(model)  # training steps only; evaluation runs the plain module

    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and not args.fp32)

    def loss_of(batch, fn=model):
        with autocast:
            logits = fn(input_ids=batch, use_cache=False).logits
        return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))

    @torch.no_grad()
    def evaluate():
        model.eval()
        total, count = 0.0, 0
        for i in range(0, len(val_blocks), args.batch_size):
            b = val_blocks[i: i + args.batch_size].to(device)
            total += loss_of(b).item() * b.numel()
            count += b.numel()
        model.train()
        return total / count

    epoch, blocks, cursor, orders = 0, None, 0, []

    def next_batch():
        nonlocal epoch, blocks, cursor
        if blocks is None or cursor + args.batch_size > len(blocks):
            rng = np.random.default_rng(args.seed + 1000 * epoch)
            order = rng.permutation(n_docs)
            packed = pack(tr["ids"], tr["offsets"], order, args.seq_len)
            blocks = torch.from_numpy(packed[rng.permutation(len(packed))])
            orders.append({"epoch": epoch, "rng": f"numpy.random.default_rng({args.seed} + 1000 * {epoch})",
                           "doc_order_sha256": hashlib.sha256(order.astype(np.int64).tobytes()).hexdigest(),
                           "first_docs": order[:5].tolist(), "blocks": int(len(packed))})
            epoch += 1
            cursor = 0
        b = blocks[cursor: cursor + args.batch_size]
        cursor += args.batch_size
        return b.to(device, non_blocking=True)

    curve = []
    model.train()
    v0 = evaluate()
    curve.append({"step": 0, "tokens": 0, "train_loss": None, "val_loss": v0, "lr": 0.0, "elapsed_s": 0.0})
    log(f"step 0 val {v0:.4f}")
    t_train = time.time()
    running, running_n, tokens, step = 0.0, 0, 0, 0
    stopped_early = False
    steps_per_epoch = splits_train_tokens // (args.batch_size * args.seq_len)
    budget_note = None
    while step < args.steps:
        if args.minutes and step == 40:
            if device.type == "cuda":
                torch.cuda.synchronize()
            # Fix the step count from the measured speed (steps 10..40), so the cosine schedule ends on time.
            per_step = (time.time() - t_probe) / 30
            by_time = int(args.minutes * 60 / (per_step * 1.08))
            by_epochs = int(args.max_epochs * steps_per_epoch) if args.max_epochs else by_time
            args.steps = max(41, min(by_time, by_epochs))
            budget_note = (f"--minutes {args.minutes} --max-epochs {args.max_epochs}: {per_step * 1000:.1f} ms/step "
                           f"measured over steps 10-40 -> --steps {args.steps} ({'time' if by_time <= by_epochs else 'epochs'} bound)")
            log(budget_note)
        if step == 10:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_probe = time.time()
        lr = lr_at(step, args)
        for g in opt.param_groups:
            g["lr"] = lr
        batch = next_batch()
        loss = loss_of(batch, forward)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        if routers:
            with torch.no_grad():
                for gate, load in zip(routers, loads):
                    gate.e_score_correction_bias += args.bias_update_rate * torch.sign(load.mean() - load)
                    load.zero_()
        step += 1
        tokens += batch.numel()
        running = running + loss.detach()
        running_n += 1
        elapsed = time.time() - t_train
        if step % args.log_every == 0:
            log(f"step {step} loss {loss.item():.4f} lr {lr:.2e} gnorm {grad_norm.item():.2f} "
                f"{tokens / elapsed:,.0f} tok/s epoch {epoch} {elapsed:.0f}s")
        over = args.max_minutes and elapsed > args.max_minutes * 60
        if step % args.eval_every == 0 or step == args.steps or over:
            v = evaluate()
            curve.append({"step": step, "tokens": tokens, "train_loss": float(running) / max(running_n, 1), "val_loss": v,
                          "lr": lr, "elapsed_s": round(elapsed, 1)})
            log(f"step {step} train {curve[-1]['train_loss']:.4f} val {v:.4f} ({elapsed:.0f}s)")
            running, running_n = 0.0, 0
        if over:
            log(f"stopping at step {step}: --max-minutes {args.max_minutes} reached")
            stopped_early = True
            break
    train_seconds = time.time() - t_train

    # dt = softplus(dt_raw + dt_bias) over the validation blocks, fp32, eval mode.
    dt_stats = {}
    model.eval()
    model.float()
    captured = {}
    handles = []
    for i, layer in enumerate(model.model.layers):
        m = layer.mixer
        if hasattr(m, "dt_bias"):
            def cap(module, inputs, output, i=i, m=m):
                raw = output[..., -m.num_heads:].float()
                captured.setdefault(i, []).append(F.softplus(raw + m.dt_bias.float()).flatten().cpu())
            handles.append(m.in_proj.register_forward_hook(cap))
    with torch.no_grad():
        for j in range(0, min(len(val_blocks), 64), 16):
            model(input_ids=val_blocks[j: j + 16].to(device), use_cache=False)
    for h in handles:
        h.remove()
    for i, xs in captured.items():
        x = torch.cat(xs)
        q = torch.quantile(x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:1_000_000]],
                           torch.tensor([0.0001, 0.001, 0.01, 0.5]))
        dt_stats[f"layer {i}"] = {"min": x.min().item(), "q0.0001": q[0].item(), "q0.001": q[1].item(),
                                  "q0.01": q[2].item(), "median": q[3].item(), "max": x.max().item(),
                                  "fraction_below_time_step_min": (x < config.time_step_min).float().mean().item(),
                                  "fraction_below_1e-3": (x < 1e-3).float().mean().item()}
    dt_min = min(s["min"] for s in dt_stats.values()) if dt_stats else None
    log(f"dt over validation: min {dt_min:.3g} (time_step_min {config.time_step_min})")

    save_checkpoint(model, config, args.data, args.out)
    # The losses of the saved (bf16) weights, as the engine will see them.
    from transformers import NemotronHForCausalLM as M
    saved = M.from_pretrained(args.out, dtype=torch.float32).to(device)
    saved.eval()
    for layer in saved.model.layers:
        if hasattr(layer.mixer, "time_step_limit"):
            layer.mixer.time_step_limit = (0.0, float("inf"))
    with torch.no_grad():
        total, count = 0.0, 0
        for i in range(0, len(val_blocks), args.batch_size):
            b = val_blocks[i: i + args.batch_size].to(device)
            logits = saved(input_ids=b, use_cache=False).logits
            total += F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), b[:, 1:].reshape(-1)).item() * b.numel()
            count += b.numel()
    val_saved = total / count

    with open(os.path.join(args.out, "loss.csv"), "w") as f:
        f.write("step,tokens,train_loss,val_loss,lr,elapsed_s\n")
        for r in curve:
            tl = "" if r["train_loss"] is None else f"{r['train_loss']:.5f}"
            f.write(f"{r['step']},{r['tokens']},{tl},{r['val_loss']:.5f},{r['lr']:.6g},{r['elapsed_s']}\n")
    splits = json.load(open(os.path.join(args.data, "splits.json")))
    record = {
        "preset": args.preset, "config": {k: jsonable(v) for k, v in preset.items()},
        "parameters": n_params, "seed": args.seed,
        "hyperparameters": {k: v for k, v in vars(args).items() if k not in ("func", "data", "out")},
        "optimizer": "AdamW(betas=(0.9, 0.95), eps=1e-8), weight decay on matrices and embeddings only, "
                     "linear warmup then cosine to min_lr_ratio * lr, gradient clipping",
        "precision": "fp32 master weights, bf16 autocast" if device.type == "cuda" and not args.fp32 else "fp32",
        "data": {"format": "documents as <s> doc </s>, concatenated in each epoch's order, cut into seq_len blocks "
                           "(tail dropped), blocks shuffled with the same rng; loss on every next token",
                 "train_tokens": splits["train_tokens"], "validation_tokens": splits["validation_tokens"],
                 "train_files": len(splits["train_files"]), "validation_files": len(splits["validation_files"]),
                 "validation_blocks": int(len(val_blocks)), "epochs": orders},
        "mamba_dt": {"time_step_min": config.time_step_min, "time_step_limit": [0.0, "Infinity"],
                     "training_clamp": "none (each mixer's time_step_limit set to (0, inf))",
                     "dt_bias_init": f"inverse softplus of dt, dt log-uniform in {list(DT_INIT)} (torch.Generator seed {args.seed})",
                     "validation_dt_stats": dt_stats, "validation_dt_min": dt_min},
        "steps": step, "steps_from_time_budget": budget_note, "tokens_seen": tokens, "epochs_seen": round(tokens / splits["train_tokens"], 2),
        "stopped_early": stopped_early, "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - t_start, 1),
        "final_train_loss": curve[-1]["train_loss"], "final_val_loss": curve[-1]["val_loss"],
        "final_val_loss_saved_bf16_weights": val_saved,
        "best_val_loss": min(r["val_loss"] for r in curve),
        "loss_curve": "loss.csv (train_loss: mean training loss of the steps since the previous row)",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__,
                     "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()},
        "reproduce": f"scripts/train-demo-model.py prepare --out DATA --seed {splits['seed']} && "
                     + " ".join(["scripts/train-demo-model.py", "train", "--data", "DATA", "--out", "OUT"]
                                + [f"--{k.replace('_', '-')}={v}" for k, v in sorted(vars(args).items())
                                   if k not in ("func", "data", "out", "minutes", "max_epochs", "max_minutes",
                                                "override", "stage", "fp32", "compile", "fast_conv") and v is not None]
                                + [f"--{k.replace('_', '-')}" for k in ("fp32", "compile", "fast_conv") if getattr(args, k)]
                                + (["--override"] + args.override if args.override else [])),
    }
    if routers:
        record["moe_correction_bias"] = {f"router {i}": [round(x, 4) for x in g.e_score_correction_bias.tolist()]
                                         for i, g in enumerate(routers)}
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(record, f, indent=1)
    log(f"done: {step} steps, {tokens:,} tokens ({record['epochs_seen']} epochs) in {train_seconds:.0f}s; "
        f"final train {record['final_train_loss']:.4f} val {record['final_val_loss']:.4f} "
        f"(saved bf16 weights: {val_saved:.4f}); wrote {args.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="stage", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--corpus", default=CORPUS)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1234, help="recorded; the split and the tokenizer are deterministic")
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--model-max-length", type=int, default=4096)
    p.set_defaults(func=prepare)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--preset", choices=sorted(PRESETS), required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--seed", type=int, default=1234)
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--seq-len", type=int, default=512)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--min-lr-ratio", type=float, default=0.1)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--weight-decay", type=float, default=0.1)
    t.add_argument("--clip", type=float, default=1.0)
    t.add_argument("--bias-update-rate", type=float, default=1e-3)
    t.add_argument("--eval-every", type=int, default=80)
    t.add_argument("--log-every", type=int, default=25)
    t.add_argument("--val-blocks", type=int, default=0, help="evaluate on the first N validation blocks (0: all)")
    t.add_argument("--minutes", type=float, default=0,
                   help="choose --steps from the speed of steps 10-40 so training takes about this long (recorded)")
    t.add_argument("--max-epochs", type=float, default=0, help="with --minutes: at most this many epochs")
    t.add_argument("--max-minutes", type=float, default=0, help="stop early after this much training time")
    t.add_argument("--fp32", action="store_true", help="no bf16 autocast on CUDA")
    t.add_argument("--compile", action="store_true", help="torch.compile the model for the training steps")
    t.add_argument("--fast-conv", action="store_true",
                   help="replace transformers' reference causal conv1d by an equal shifted-sum version (speed)")
    t.add_argument("--override", nargs="*", help="config overrides KEY=JSON (for small local tests)")
    t.set_defaults(func=train)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
