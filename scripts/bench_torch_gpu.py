#!/usr/bin/env python3
"""PyTorch peer of the reference workloads W1, W2, W3 on a GPU (or, to check the script, on the CPU).

The models, losses and optimizers are copied from ../shared/bench/peers/bench_torch.py (the CPU peer)
so that both peers run the same math; the workload definitions and FLOP counts are copied from
../shared/bench/peers/common.py, so this file needs nothing but torch and numpy (the GPU machine has
no copy of shared/).

usage (GPU):  python3 scripts/bench_torch_gpu.py [--batches 256,1024] [--modes eager,compile]
                  [--workloads W1,W2,W3] [--epochs 3] [--tf32] [--json PATH] [--budget-s 300]
usage (check on a CPU):  python3 scripts/bench_torch_gpu.py --device cpu --epochs 1 --batches 256 \
                  --modes eager --rows 6000

Measuring rules (../shared/bench/README.md): data 60,000 x 784 f32 uniform [0,1) from numpy PCG64
seed 12345, resident on the device; contiguous minibatches, the last partial one dropped, no
shuffling; 20 warm-up steps, then each epoch timed on its own with torch.cuda.synchronize() before
and after it; samples/s = rows per epoch / epoch seconds, median over --epochs. Adam is
torch.optim.Adam(fused=True) on CUDA in eager mode (in compile mode the default Adam, whose step
torch.compile fuses itself; --compile-adam fused to change). Single-row encode latency: the encoder
alone, batch 1, inference_mode, 100 warm-up then 1000 timed calls, synchronize after every call,
median in microseconds.

Machine floors, measured in the same run:
  * GEMM rate: torch.mm f32 N^3 (N=4096 on CUDA; --gemm-n) with TF32 off and on, and every GEMM
    of each workload's training step at each batch (forward B x in x out, input gradient
    B x out x in except for the first layer, weight gradient out x B x in).
  * device copy bandwidth: dst.copy_(src) of --copy-mib MiB (1024 = 1 GiB), counted as
    (bytes read + bytes written) / s = 2 * size / s, the same way the byte formula below counts.
  * host-to-device bandwidth: a pinned host tensor of the same size copied to the device, size / s.
Per workload and batch, two floors on the epoch time, printed as ceilings on samples/s:
  * GEMM floor: seconds per epoch = train FLOPs per epoch / GEMM rate (the README's convention,
    train = 3 x forward), with the N^3 rate; also the sum of the measured times of the step's own
    GEMM shapes ("shape floor"), which counts only the GEMMs really needed.
  * bandwidth floor: seconds per epoch = bytes per epoch / copy bandwidth, where per step
        bytes = 4 * ( sum_l [B*in_l + P_l + B*out_l]                      forward: read x, W, b; write y
                    + sum_l [B*out_l + B*in_l + 2*P_l] + sum_{l>1} B*in_l  backward: read dy, x, W;
                                                                          write dW, db; write dx (not layer 1)
                    + 3*B*784                                              loss: read logits, target; write dlogits
                    + k*P )                                                optimizer: SGD+momentum k=5
                                                                          (read p, g, m; write p, m), Adam k=7
    with P_l = in_l*out_l + out_l and P = sum_l P_l: every parameter and every activation read or
    written once per layer and pass (elementwise activations fused into the GEMM epilogues; the
    VAE's 32-wide reparameterisation terms are left out, under 1%).
Output: a markdown table on stdout and, with --json PATH, every number as JSON (rewritten after each
run, so a run cut short by `timeout` still leaves what it measured; SIGTERM also prints the tables).
"""
import argparse
import json
import os
import platform
import signal
import statistics
import sys
import time
import traceback

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------- workloads (copied from common.py)
N_ROWS = 60000
N_FEAT = 784
SEED = 12345

WORKLOADS = {
    "W1": dict(name="deep", sizes=[784, 1000, 500, 250, 30, 250, 500, 1000, 784], enc_layers=4),
    "W2": dict(name="small", sizes=[784, 256, 64, 256, 784], enc_layers=2),
    "W3": dict(name="vae"),
}
VAE_LAYERS = [(784, 512), (512, 32), (512, 32), (32, 512), (512, 784)]
VAE_ENC_LAYERS = [(784, 512), (512, 32), (512, 32)]
OPTIMIZER = {"W1": "sgd_momentum", "W2": "adam", "W3": "adam"}
OPT_BYTES_PER_PARAM = {"sgd_momentum": 5, "adam": 7}  # f32 words read+written per parameter per step


def dense_layers(wid):
    if wid == "W3":
        return VAE_LAYERS
    s = WORKLOADS[wid]["sizes"]
    return list(zip(s[:-1], s[1:]))


def enc_layers(wid):
    if wid == "W3":
        return VAE_ENC_LAYERS
    return dense_layers(wid)[: WORKLOADS[wid]["enc_layers"]]


def fwd_flops_per_sample(wid):
    return sum(2 * i * o for i, o in dense_layers(wid))


def train_flops_per_sample(wid):
    return 3 * fwd_flops_per_sample(wid)  # backward counted as 2x forward (README convention)


def exact_train_flops_per_sample(wid):
    i, o = dense_layers(wid)[0]
    return train_flops_per_sample(wid) - 2 * i * o  # no input gradient for the first layer


def enc_flops_per_sample(wid):
    return sum(2 * i * o for i, o in enc_layers(wid))


def n_params(wid):
    return sum(i * o + o for i, o in dense_layers(wid))


def bytes_per_step(wid, b):
    """The formula in the module docstring, in bytes (f32)."""
    layers = dense_layers(wid)
    fwd = sum(b * i + (i * o + o) + b * o for i, o in layers)
    bwd = sum(b * o + b * i + 2 * (i * o + o) for i, o in layers) + sum(b * i for i, _ in layers[1:])
    loss = 3 * b * N_FEAT
    opt = OPT_BYTES_PER_PARAM[OPTIMIZER[wid]] * n_params(wid)
    return 4 * (fwd + bwd + loss + opt)


def step_gemms(wid, b):
    """(M, K, N) of every GEMM of one training step: C[MxN] = A[MxK] @ B[KxN]."""
    out = []
    for li, (i, o) in enumerate(dense_layers(wid)):
        out.append((b, i, o))  # forward
        if li > 0:
            out.append((b, o, i))  # input gradient
        out.append((o, b, i))  # weight gradient
    return out


def make_data(rows):
    """The peers' data set (numpy PCG64 seed 12345); fewer rows = the first rows of the same stream."""
    rng = np.random.default_rng(SEED)
    return rng.random((rows, N_FEAT), dtype=np.float32)


# ---------------------------------------------------------------- models (copied from bench_torch.py)
def adam(params, fused):
    if fused:
        return torch.optim.Adam(params, lr=1e-3, fused=True)
    return torch.optim.Adam(params, lr=1e-3)


def build(wid, adam_fused):
    if wid == "W1":
        s = WORKLOADS["W1"]["sizes"]
        mods = []
        for i in range(len(s) - 1):
            mods.append(nn.Linear(s[i], s[i + 1]))
            last = i == len(s) - 2
            code = s[i + 1] == 30
            if not last and not code:
                mods.append(nn.Sigmoid())
        net = nn.Sequential(*mods)  # outputs logits; sigmoid folded into the loss
        enc = net[:7]  # Linear784-1000,Sig,Linear1000-500,Sig,Linear500-250,Sig,Linear250-30

        def loss_fn(x):
            return F.binary_cross_entropy_with_logits(net(x), x)  # mean over batch*784

        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        return net, enc, loss_fn, opt
    if wid == "W2":
        net = nn.Sequential(
            nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(),
            nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 784), nn.Sigmoid(),
        )
        enc = net[:4]

        def loss_fn(x):
            return F.mse_loss(net(x), x)

        opt = adam(net.parameters(), adam_fused)
        return net, enc, loss_fn, opt
    if wid == "W3":
        class VAE(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(784, 512)
                self.mu = nn.Linear(512, 32)
                self.logvar = nn.Linear(512, 32)
                self.fc3 = nn.Linear(32, 512)
                self.fc4 = nn.Linear(512, 784)

            def encode(self, x):
                h = F.relu(self.fc1(x))
                return self.mu(h), self.logvar(h)

            def forward(self, x):
                mu, logvar = self.encode(x)
                z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
                return self.fc4(F.relu(self.fc3(z))), mu, logvar

        net = VAE()

        class Enc(nn.Module):
            def __init__(self, v):
                super().__init__()
                self.v = v

            def forward(self, x):
                return self.v.encode(x)

        enc = Enc(net)

        def loss_fn(x):
            logits, mu, logvar = net(x)
            bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            return (bce + kl) / x.shape[0]

        opt = adam(net.parameters(), adam_fused)
        return net, enc, loss_fn, opt
    raise ValueError(wid)


# ---------------------------------------------------------------- helpers
class Terminated(Exception):
    pass


_TERMINATED = []  # set by SIGTERM: torch.compile may wrap the exception raised into its own


def _on_sigterm(signum, frame):
    _TERMINATED.append(signum)
    raise Terminated(f"signal {signum}")


def log(*a):
    print(*a, flush=True)


def now():
    return time.perf_counter()


def make_sync(device):
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def summarize(values):
    values = list(values)
    return dict(median=statistics.median(values), min=min(values), max=max(values), n=len(values), all=values)


def set_tf32(on):
    """TF32 for float32 matmuls (and cuDNN) on or off, through whichever API this torch has."""
    state = {}
    try:
        torch.set_float32_matmul_precision("high" if on else "highest")
    except Exception as ex:  # pragma: no cover
        state["set_float32_matmul_precision_error"] = repr(ex)
    m = torch.backends.cuda.matmul
    if hasattr(m, "fp32_precision"):  # torch >= 2.9
        try:
            m.fp32_precision = "tf32" if on else "ieee"
        except Exception as ex:
            state["fp32_precision_error"] = repr(ex)
    else:
        m.allow_tf32 = on
    try:
        torch.backends.cudnn.allow_tf32 = on
    except Exception:
        pass
    state.update(requested=on, float32_matmul_precision=torch.get_float32_matmul_precision())
    if hasattr(m, "fp32_precision"):
        state["cuda_matmul_fp32_precision"] = str(m.fp32_precision)
    else:
        state["cuda_matmul_allow_tf32"] = bool(m.allow_tf32)
    return state


def time_loop(fn, sync, min_time):
    """Seconds per call of fn: calibrated repetitions, 3 repeats, median (sync around each repeat)."""
    fn()
    sync()
    t0 = now()
    fn()
    sync()
    dt = max(now() - t0, 1e-7)
    reps = max(3, min(100000, int(min_time / dt)))
    per = []
    for _ in range(3):
        sync()
        t0 = now()
        for _ in range(reps):
            fn()
        sync()
        per.append((now() - t0) / reps)
    return statistics.median(per), reps


# ---------------------------------------------------------------- floors
def measure_floors(a, device, sync, workloads, batches):
    fl = dict(gemm_square={}, gemm_shapes={}, copy={}, workloads={})
    is_cuda = device.type == "cuda"
    n = a.gemm_n or (4096 if is_cuda else 1024)
    for tf32 in (False, True):
        key = "tf32" if tf32 else "fp32"
        set_tf32(tf32)
        try:
            A = torch.rand(n, n, device=device)
            B = torch.rand(n, n, device=device)
            C = torch.empty(n, n, device=device)
            t, reps = time_loop(lambda: torch.mm(A, B, out=C), sync, a.gemm_min_time)
            fl["gemm_square"][key] = dict(n=n, s_per_call=t, reps=reps, gflops=2.0 * n ** 3 / t / 1e9)
            log(f"floors: torch.mm {n}^3 {key}: {2.0 * n ** 3 / t / 1e9:,.0f} GFLOP/s")
            del A, B, C
        except Exception as ex:
            traceback.print_exc()
            fl["gemm_square"][key] = dict(n=n, error=repr(ex)[:2000])
        shapes = {}
        for wid in workloads:
            for b in batches:
                for mkn in step_gemms(wid, b):
                    if mkn in shapes:
                        continue
                    m, k, nn_ = mkn
                    try:
                        A = torch.rand(m, k, device=device)
                        B = torch.rand(k, nn_, device=device)
                        C = torch.empty(m, nn_, device=device)
                        t, _ = time_loop(lambda: torch.mm(A, B, out=C), sync, a.shape_min_time)
                        shapes[mkn] = t
                    except Exception as ex:
                        traceback.print_exc()
                        shapes[mkn] = None
        fl["gemm_shapes"][key] = {
            f"{m}x{k}x{n_}": (dict(s=t, gflops=2.0 * m * k * n_ / t / 1e9) if t else None)
            for (m, k, n_), t in shapes.items()}
        for wid in workloads:
            for b in batches:
                g = step_gemms(wid, b)
                if any(shapes.get(s) is None for s in g):
                    continue
                step_s = sum(shapes[s] for s in g)
                flops = sum(2.0 * m * k * n_ for m, k, n_ in g)
                d = fl["workloads"].setdefault(f"{wid}/b{b}", {})
                d[f"shape_gemm_step_s_{key}"] = step_s
                d[f"shape_gemm_gflops_{key}"] = flops / step_s / 1e9
                d[f"shape_floor_samples_per_s_{key}"] = b / step_s
    set_tf32(a.tf32)

    # device copy bandwidth
    nbytes = int(a.copy_mib * 2 ** 20)
    try:
        src = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
        dst = torch.empty_like(src)
        t, reps = time_loop(lambda: dst.copy_(src), sync, a.copy_min_time)
        fl["copy"]["d2d"] = dict(bytes=nbytes, s=t, reps=reps, gbps_read_plus_write=2.0 * nbytes / t / 1e9,
                                 gbps_size_over_time=nbytes / t / 1e9)
        log(f"floors: device copy {a.copy_mib:g} MiB: {2.0 * nbytes / t / 1e9:,.1f} GB/s (read+write)")
        del src, dst
    except Exception as ex:
        traceback.print_exc()
        fl["copy"]["d2d"] = dict(error=repr(ex)[:2000])
    if is_cuda:
        try:
            h = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True).fill_(1)
            d = torch.empty(nbytes, dtype=torch.uint8, device=device)
            t, reps = time_loop(lambda: d.copy_(h, non_blocking=True), sync, a.copy_min_time)
            fl["copy"]["h2d_pinned"] = dict(bytes=nbytes, s=t, reps=reps, gbps=nbytes / t / 1e9)
            log(f"floors: host-to-device (pinned) {a.copy_mib:g} MiB: {nbytes / t / 1e9:,.1f} GB/s")
            del h, d
        except Exception as ex:
            traceback.print_exc()
            fl["copy"]["h2d_pinned"] = dict(error=repr(ex)[:2000])
    else:
        fl["copy"]["h2d_pinned"] = dict(skipped="no CUDA device")
        log("floors: host-to-device skipped (no CUDA device)")

    key = "tf32" if a.tf32 else "fp32"
    peak = fl["gemm_square"].get(key, {}).get("gflops")
    bw = fl["copy"].get("d2d", {}).get("gbps_read_plus_write")
    for wid in workloads:
        for b in batches:
            d = fl["workloads"].setdefault(f"{wid}/b{b}", {})
            d.update(workload=wid, batch=b, train_mflop_per_sample=train_flops_per_sample(wid) / 1e6,
                     exact_train_mflop_per_sample=exact_train_flops_per_sample(wid) / 1e6,
                     bytes_per_step=bytes_per_step(wid, b), bytes_per_sample=bytes_per_step(wid, b) / b,
                     params=n_params(wid), gemm_rate_used=key)
            if peak:
                d["gemm_floor_samples_per_s"] = peak * 1e9 / train_flops_per_sample(wid)
                d["gemm_floor_s_per_epoch_60000"] = (N_ROWS // b) * b * train_flops_per_sample(wid) / (peak * 1e9)
            if bw:
                d["bw_floor_samples_per_s"] = bw * 1e9 / (bytes_per_step(wid, b) / b)
                d["bw_floor_s_per_epoch_60000"] = (N_ROWS // b) * bytes_per_step(wid, b) / (bw * 1e9)
    return fl


# ---------------------------------------------------------------- one training run
def run_workload(wid, b, mode, X, a, device, sync):
    torch.manual_seed(0)
    info = dict(workload=wid, batch=b, mode=mode)
    if mode == "compile":
        import torch._dynamo as dynamo  # (not "import torch._dynamo": that would make torch local here)
        dynamo.reset()  # each run compiles on its own (static shapes, fresh guards)
        adam_fused = a.compile_adam == "fused"
    else:
        adam_fused = device.type == "cuda" or a.adam_fused_cpu
    info["optimizer"] = "SGD(momentum 0.9)" if wid == "W1" else f"Adam(fused={adam_fused})"
    # parameters initialised on the CPU (same values as the CPU peer under manual_seed(0)), then moved;
    # the optimizer is made again on the moved parameters with the fused flag wanted here
    net, enc, loss_fn, opt = build(wid, False)
    net.to(device)
    if wid == "W1":
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    else:
        opt = adam(net.parameters(), adam_fused)
    nb = X.shape[0] // b
    if nb == 0:
        raise ValueError(f"batch {b} larger than the {X.shape[0]} rows")
    batches = [X[i * b:(i + 1) * b] for i in range(nb)]
    if mode == "compile":
        cmode = a.compile_mode or None
        info["compile_mode"] = cmode or "default"
        loss_c = torch.compile(loss_fn, mode=cmode, dynamic=False)

        @torch.compile(fullgraph=False, mode=cmode, dynamic=False)
        def opt_step():
            opt.step()

        def step(xb):
            opt.zero_grad(set_to_none=True)
            loss = loss_c(xb)
            loss.backward()
            opt_step()
            return loss
    else:
        def step(xb):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(xb)
            loss.backward()
            opt.step()
            return loss

    sync()
    t0 = now()
    for i in range(a.warmup):
        loss = step(batches[i % nb])
    sync()
    info["warmup_s"] = now() - t0
    info["loss_after_warmup"] = float(loss.detach())
    times = []
    for e in range(a.epochs):
        sync()
        t0 = now()
        for xb in batches:
            loss = step(xb)
        sync()
        el = now() - t0
        times.append(el)
        log(f"  torch-{mode} {wid} b{b} epoch {e}: {el:.4f}s  {nb * b / el:,.0f} samples/s  "
            f"loss {float(loss.detach()):.4f}")
    info["final_loss"] = float(loss.detach())
    info["epoch_s"] = times
    info["samples_per_epoch"] = nb * b
    info["samples_per_s"] = summarize(nb * b / t for t in times)
    med = info["samples_per_s"]["median"]
    info["train_gflops"] = med * train_flops_per_sample(wid) / 1e9
    info["exact_train_gflops"] = med * exact_train_flops_per_sample(wid) / 1e9

    # encode latency, batch 1, encoder alone
    net.eval()
    x1 = X[:1].clone()
    try:
        encf = torch.compile(enc, mode=a.compile_mode or None, dynamic=False) if mode == "compile" else enc
        with torch.inference_mode():
            for _ in range(a.lat_warmup):
                encf(x1)
            sync()
            ts = []
            for _ in range(a.lat_calls):
                t0 = now()
                encf(x1)
                sync()
                ts.append(now() - t0)
        ts.sort()
        n = len(ts)
        info["encode_latency"] = dict(median_us=statistics.median(ts) * 1e6, p10_us=ts[n // 10] * 1e6,
                                      p90_us=ts[(9 * n) // 10] * 1e6, calls=n)
        log(f"  torch-{mode} {wid} b{b} encode latency (batch 1): {info['encode_latency']['median_us']:.1f} us")
    except Terminated:
        raise
    except Exception as ex:
        traceback.print_exc()
        info["encode_latency"] = dict(error=repr(ex)[:2000])
    del net, enc, opt, batches
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return info


# ---------------------------------------------------------------- output
def fmt(v, spec=",.0f"):
    return "" if v is None else format(v, spec)


def tables(out):
    lines = []
    fl = out.get("floors") or {}
    key = "tf32" if out["tf32"]["requested"] else "fp32"
    lines.append(f"\n## Machine floors ({out['device_name']}, torch {out['versions']['torch']}, "
                 f"TF32 {'on' if out['tf32']['requested'] else 'off'} for the runs)\n")
    lines.append("| measurement | value |")
    lines.append("|---|---|")
    for k, g in (fl.get("gemm_square") or {}).items():
        lines.append(f"| torch.mm f32 {g.get('n')}^3, {k} | {fmt(g.get('gflops'))} GFLOP/s |")
    c = (fl.get("copy") or {})
    if "gbps_read_plus_write" in c.get("d2d", {}):
        d = c["d2d"]
        lines.append(f"| device copy {d['bytes'] / 2 ** 20:g} MiB (read+write) | {d['gbps_read_plus_write']:,.1f} GB/s |")
    if "gbps" in c.get("h2d_pinned", {}):
        d = c["h2d_pinned"]
        lines.append(f"| host-to-device, pinned, {d['bytes'] / 2 ** 20:g} MiB | {d['gbps']:,.1f} GB/s |")
    wl = fl.get("workloads") or {}
    if wl:
        lines.append("\n| workload | batch | train MFLOP/sample | bytes/sample | GEMM floor samples/s "
                     f"({key} N^3 rate) | shape floor samples/s fp32 | shape floor samples/s tf32 | "
                     "bandwidth floor samples/s |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for k, d in wl.items():
            lines.append(f"| {d.get('workload')} | {d.get('batch')} | {d.get('train_mflop_per_sample', 0):.3f} | "
                         f"{fmt(d.get('bytes_per_sample'))} | {fmt(d.get('gemm_floor_samples_per_s'))} | "
                         f"{fmt(d.get('shape_floor_samples_per_s_fp32'))} | "
                         f"{fmt(d.get('shape_floor_samples_per_s_tf32'))} | {fmt(d.get('bw_floor_samples_per_s'))} |")
    lines.append("\n## Training (median samples/s over epochs) and batch-1 encode latency\n")
    lines.append("| workload | batch | mode | samples/s | GFLOP/s (train = 3x fwd) | % of GEMM floor | "
                 "% of bandwidth floor | encode us, batch 1 | final loss |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for r in out["runs"]:
        w, b = r["workload"], r["batch"]
        d = wl.get(f"{w}/b{b}", {})
        if "error" in r or "skipped" in r:
            why = r.get("error") or r.get("skipped")
            lines.append(f"| {w} | {b} | {r['mode']} | {'FAILED' if 'error' in r else 'skipped'}: "
                         f"{why.splitlines()[0][:100]} | | | | | |")
            continue
        sps = r["samples_per_s"]["median"]
        g = d.get("gemm_floor_samples_per_s")
        bwf = d.get("bw_floor_samples_per_s")
        lat = (r.get("encode_latency") or {}).get("median_us")
        lines.append(f"| {w} | {b} | {r['mode']} | {sps:,.0f} | {r['train_gflops']:,.1f} | "
                     f"{fmt(100 * sps / g if g else None, '.1f')}% | {fmt(100 * sps / bwf if bwf else None, '.1f')}% | "
                     f"{fmt(lat, '.1f')} | {r['final_loss']:.4f} |")
    return "\n".join(lines)


def write_json(out, path):
    if not path:
        return
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True, default=str)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--workloads", default="W1,W2,W3")
    ap.add_argument("--batches", default="256,1024")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rows", type=int, default=N_ROWS, help="rows of the data set (first rows of the same stream)")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in f32 matmuls for the training runs")
    ap.add_argument("--json", default=None, help="write every number here")
    ap.add_argument("--compile-mode", default=None, help="torch.compile(mode=...), e.g. max-autotune")
    ap.add_argument("--compile-adam", default="default", choices=["default", "fused"])
    ap.add_argument("--adam-fused-cpu", action="store_true", help="fused Adam also on the CPU")
    ap.add_argument("--threads", type=int, default=2, help="torch threads on the CPU device")
    ap.add_argument("--lat-warmup", type=int, default=100)
    ap.add_argument("--lat-calls", type=int, default=1000)
    ap.add_argument("--no-floors", action="store_true")
    ap.add_argument("--gemm-n", type=int, default=0, help="square GEMM size (0: 4096 on CUDA, 1024 on CPU)")
    ap.add_argument("--gemm-min-time", type=float, default=0.2, help="seconds per repeat, square GEMM")
    ap.add_argument("--shape-min-time", type=float, default=0.01, help="seconds per repeat, workload GEMM shapes")
    ap.add_argument("--copy-mib", type=float, default=1024.0, help="copy size in MiB (1024 = 1 GiB)")
    ap.add_argument("--copy-min-time", type=float, default=0.1)
    ap.add_argument("--budget-s", type=float, default=0.0,
                    help="skip the runs that would start after this many seconds (0: no limit)")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, _on_sigterm)
    t_start = now()

    device = torch.device(a.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"bench_torch_gpu: --device {a.device} but torch.cuda.is_available() is False "
                             f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
        torch.cuda.set_device(device)
        device_name = torch.cuda.get_device_name(device)
    else:
        torch.set_num_threads(a.threads)
        device_name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        device_name = line.split(":", 1)[1].strip() + f" ({torch.get_num_threads()} threads)"
                        break
        except OSError:
            pass
    sync = make_sync(device)
    tf32_state = set_tf32(a.tf32)
    workloads = [w for w in a.workloads.split(",") if w]
    batch_list = [int(b) for b in a.batches.split(",") if b]
    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in ("eager", "compile"):
            raise SystemExit(f"unknown mode {m}")

    versions = dict(torch=torch.__version__, numpy=np.__version__, cuda=torch.version.cuda,
                    cudnn=(torch.backends.cudnn.version() if device.type == "cuda" else None),
                    python=sys.version.split()[0])
    try:
        import triton  # noqa: F401
        versions["triton"] = triton.__version__
    except Exception:
        versions["triton"] = None
    out = dict(peer="torch-gpu", device=str(device), device_name=device_name, versions=versions,
               platform=platform.platform(), args=vars(a), tf32=tf32_state, started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               flops=dict((w, dict(forward_mflop=fwd_flops_per_sample(w) / 1e6,
                                   train_mflop=train_flops_per_sample(w) / 1e6,
                                   exact_train_mflop=exact_train_flops_per_sample(w) / 1e6,
                                   encoder_mflop=enc_flops_per_sample(w) / 1e6,
                                   params=n_params(w))) for w in workloads),
               bytes_formula=("4*(sum_l[B*in+P_l+B*out] + sum_l[B*out+B*in+2*P_l] + sum_{l>1}[B*in] + 3*B*784 "
                              "+ k*P), k=5 SGD+momentum, k=7 Adam; P_l=in*out+out"),
               floors=None, runs=[])
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        out["device_properties"] = dict(name=p.name, total_memory=p.total_memory,
                                        multi_processor_count=p.multi_processor_count,
                                        capability=f"{p.major}.{p.minor}")
    log(f"bench_torch_gpu: {device_name} on {device}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"TF32 {'on' if a.tf32 else 'off'} ({tf32_state}), rows {a.rows}, batches {batch_list}, modes {modes}, "
        f"epochs {a.epochs}")
    interrupted = None
    try:
        if not a.no_floors:
            t0 = now()
            out["floors"] = measure_floors(a, device, sync, workloads, batch_list)
            out["floors"]["elapsed_s"] = now() - t0
            log(f"floors measured in {now() - t0:.1f}s")
            write_json(out, a.json)
        Xh = make_data(a.rows)
        X = torch.from_numpy(Xh).to(device)
        sync()
        del Xh
        for mode in modes:  # all eager runs first: the compile runs are the slow ones
            for wid in workloads:
                for b in batch_list:
                    if a.budget_s and now() - t_start > a.budget_s:
                        out["runs"].append(dict(workload=wid, batch=b, mode=mode,
                                                skipped=f"over --budget-s {a.budget_s:g}"))
                        log(f"torch-{mode} {wid} b{b}: skipped (over the budget of {a.budget_s:g}s)")
                        continue
                    log(f"torch-{mode} {wid} batch {b}:")
                    t0 = now()
                    try:
                        r = run_workload(wid, b, mode, X, a, device, sync)
                    except Terminated:
                        raise
                    except Exception as ex:  # a compile failure (or any other) is recorded; go on
                        if _TERMINATED:
                            out["runs"].append(dict(workload=wid, batch=b, mode=mode,
                                                    error=f"interrupted by signal {_TERMINATED[0]}"))
                            raise Terminated(f"signal {_TERMINATED[0]}") from ex
                        traceback.print_exc()
                        r = dict(workload=wid, batch=b, mode=mode, error=repr(ex)[:4000])
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                    r["elapsed_s"] = now() - t0
                    out["runs"].append(r)
                    write_json(out, a.json)
    except (Terminated, KeyboardInterrupt) as ex:
        interrupted = repr(ex)
        out["interrupted"] = interrupted
        log(f"bench_torch_gpu: interrupted ({interrupted}); printing what was measured")
    out["elapsed_s"] = now() - t_start
    write_json(out, a.json)
    print(tables(out), flush=True)
    if a.json:
        log(f"\nwrote {a.json}")
    failed = [r for r in out["runs"] if "error" in r]
    if failed:
        log(f"bench_torch_gpu: {len(failed)} run(s) failed: " + ", ".join(
            f"{r['workload']}/b{r['batch']}/{r['mode']}" for r in failed))
    sys.exit(3 if interrupted else (1 if len(failed) == len(out["runs"]) and failed else 0))


if __name__ == "__main__":
    main()
