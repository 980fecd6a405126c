"""The GPT of graph.layers against a character GPT written out by hand in numpy (issue 21, point 7).

The reference below is the default model's architecture (token and position
embeddings, pre-norm blocks of causal multi-head attention and a GELU MLP,
a final layer norm, an output head sharing the token table, mean softmax
cross-entropy), forward and backward by hand, as the char-RNN test does for
min-char-rnn.  At a small size, in float64, the loss, every gradient and
the parameters after 5 AdamW steps (graph.optimizers.AdamW against the
reference's own AdamW) must agree with the graph to 1e-10.
"""

import math

import numpy as np
import pytest
from scipy import special

from graph import ComputationalGraph
from graph.layers import gpt
from graph.optimizers import AdamW

VOCAB, LAYERS, HEADS, WIDTH, CONTEXT, BATCH = 11, 2, 2, 8, 6, 3
EPS = 1e-5  # layer norm


# ------------------------------------------------------------ the reference


def layer_norm_forward(x, gamma, beta):
    mean = x.mean(axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + EPS)
    x_hat = (x - mean) * inv_std
    return x_hat * gamma + beta, (x_hat, inv_std, gamma)


def layer_norm_backward(dout, cache):
    x_hat, inv_std, gamma = cache
    dx_hat = dout * gamma
    dx = inv_std * (dx_hat - dx_hat.mean(-1, keepdims=True) - x_hat * (dx_hat * x_hat).mean(-1, keepdims=True))
    return dx, (dout * x_hat).sum(axis=(0, 1)), dout.sum(axis=(0, 1))


def gelu_forward(x):
    cdf = 0.5 * (1.0 + special.erf(x / math.sqrt(2.0)))
    return x * cdf, (x, cdf)


def gelu_backward(dout, cache):
    x, cdf = cache
    return dout * (cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi))


def split_heads(x):
    B, T, C = x.shape
    return x.reshape(B, T, HEADS, C // HEADS).transpose(0, 2, 1, 3)


def merge_heads(x):
    B, H, T, D = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * D)


def attention_forward(x, P, prefix):
    q, k, v = (split_heads(x @ P[f"{prefix}.{part}.W"] + P[f"{prefix}.{part}.b"]) for part in "qkv")
    T, D = q.shape[2], q.shape[3]
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D)
    scores = np.where(np.tri(T, dtype=bool), scores, -np.inf)
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    mixed = merge_heads(p @ v)
    out = mixed @ P[f"{prefix}.proj.W"] + P[f"{prefix}.proj.b"]
    return out, (x, q, k, v, p, mixed)


def attention_backward(dout, cache, P, prefix, grads):
    x, q, k, v, p, mixed = cache
    D = q.shape[3]
    grads[f"{prefix}.proj.W"] = np.einsum("btc,btd->cd", mixed, dout)
    grads[f"{prefix}.proj.b"] = dout.sum(axis=(0, 1))
    dmixed = split_heads(dout @ P[f"{prefix}.proj.W"].T)
    dp = dmixed @ v.transpose(0, 1, 3, 2)
    dv = p.transpose(0, 1, 3, 2) @ dmixed
    dscores = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) / math.sqrt(D)
    dq, dk = dscores @ k, dscores.transpose(0, 1, 3, 2) @ q
    dx = 0.0
    for part, dpart in zip("qkv", (dq, dk, dv)):
        dpart = merge_heads(dpart)
        grads[f"{prefix}.{part}.W"] = np.einsum("btc,btd->cd", x, dpart)
        grads[f"{prefix}.{part}.b"] = dpart.sum(axis=(0, 1))
        dx = dx + dpart @ P[f"{prefix}.{part}.W"].T
    return dx


def reference_loss_and_grads(P, tokens, targets):
    """(loss, gradients by parameter name) of the reference GPT, forward and backward by hand."""
    B, T = tokens.shape
    table = P["gpt.tokens.table"]
    x = table[tokens] + P["gpt.positions.table"][:T]
    caches = []
    for layer in range(1, LAYERS + 1):
        block = f"gpt.block{layer}"
        h1, ln1 = layer_norm_forward(x, P[f"{block}.ln1.gamma"], P[f"{block}.ln1.beta"])
        attended, attention = attention_forward(h1, P, f"{block}.attn")
        x = x + attended
        h2, ln2 = layer_norm_forward(x, P[f"{block}.ln2.gamma"], P[f"{block}.ln2.beta"])
        pre = h2 @ P[f"{block}.mlp.fc.W"] + P[f"{block}.mlp.fc.b"]
        hidden, gelu = gelu_forward(pre)
        x = x + hidden @ P[f"{block}.mlp.proj.W"] + P[f"{block}.mlp.proj.b"]
        caches.append((ln1, attention, ln2, h2, gelu, hidden))
    xf, lnf = layer_norm_forward(x, P["gpt.ln_f.gamma"], P["gpt.ln_f.beta"])
    logits = xf @ table.T  # the head shares the token table
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    rows, columns = np.arange(B)[:, None], np.arange(T)[None, :]
    loss = -log_probs[rows, columns, targets].mean()

    grads = {}
    dlogits = np.exp(log_probs)
    dlogits[rows, columns, targets] -= 1.0
    dlogits /= B * T
    dtable = np.einsum("btv,btc->vc", dlogits, xf)
    dx, grads["gpt.ln_f.gamma"], grads["gpt.ln_f.beta"] = layer_norm_backward(dlogits @ table, lnf)
    for layer in range(LAYERS, 0, -1):
        block = f"gpt.block{layer}"
        ln1, attention, ln2, h2, gelu, hidden = caches[layer - 1]
        grads[f"{block}.mlp.proj.W"] = np.einsum("btf,btc->fc", hidden, dx)
        grads[f"{block}.mlp.proj.b"] = dx.sum(axis=(0, 1))
        dpre = gelu_backward(dx @ P[f"{block}.mlp.proj.W"].T, gelu)
        grads[f"{block}.mlp.fc.W"] = np.einsum("btc,btf->cf", h2, dpre)
        grads[f"{block}.mlp.fc.b"] = dpre.sum(axis=(0, 1))
        dh2, grads[f"{block}.ln2.gamma"], grads[f"{block}.ln2.beta"] = layer_norm_backward(
            dpre @ P[f"{block}.mlp.fc.W"].T, ln2
        )
        dx = dx + dh2
        dh1 = attention_backward(dx, attention, P, f"{block}.attn", grads)
        dh1, grads[f"{block}.ln1.gamma"], grads[f"{block}.ln1.beta"] = layer_norm_backward(dh1, ln1)
        dx = dx + dh1
    grads["gpt.positions.table"] = np.zeros_like(P["gpt.positions.table"])
    grads["gpt.positions.table"][:T] = dx.sum(axis=0)
    np.add.at(dtable, tokens.reshape(-1), dx.reshape(-1, WIDTH))
    grads["gpt.tokens.table"] = dtable
    return loss, grads


class ReferenceAdamW:
    """torch.optim.AdamW's update, written out: decay p by lr * weight_decay, then the bias-corrected Adam step."""

    def __init__(self, params, lr, beta1, beta2, eps, weight_decay, no_decay):
        self.params, self.lr, self.beta1, self.beta2, self.eps = params, lr, beta1, beta2, eps
        self.weight_decay, self.no_decay = weight_decay, set(no_decay)
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}
        self.t = 0

    def step(self, grads):
        self.t += 1
        for name, p in self.params.items():
            if name not in self.no_decay:
                p *= 1.0 - self.lr * self.weight_decay
            self.m[name] = self.beta1 * self.m[name] + (1.0 - self.beta1) * grads[name]
            self.v[name] = self.beta2 * self.v[name] + (1.0 - self.beta2) * grads[name] ** 2
            m_hat = self.m[name] / (1.0 - self.beta1**self.t)
            v_hat = self.v[name] / (1.0 - self.beta2**self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


# ---------------------------------------------------------------- the tests


def graph_gpt(fused):
    g = ComputationalGraph()
    tokens = g.add_input("tokens", requires_grad=False)
    targets = g.add_input("targets", requires_grad=False)
    _, loss = gpt(g, tokens, VOCAB, LAYERS, HEADS, WIDTH, CONTEXT, np.random.default_rng(0), targets, fused=fused)
    g.output = loss
    # Away from the initial values (gammas 1, biases 0), so that every term of the backward counts.
    rng = np.random.default_rng(1)
    for value in g.params.values():
        value += 0.2 * rng.standard_normal(value.shape)
    return g


def batch(rng, T=CONTEXT):
    return rng.integers(0, VOCAB, (BATCH, T)), rng.integers(0, VOCAB, (BATCH, T))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_loss_and_every_gradient_match_the_numpy_reference(fused):
    g = graph_gpt(fused)
    tokens, targets = batch(np.random.default_rng(2))
    loss, grads = reference_loss_and_grads({k: v.copy() for k, v in g.params.items()}, tokens, targets)
    graph_loss = g.forward({"tokens": tokens, "targets": targets})
    graph_grads = g.backward()
    assert abs(graph_loss - loss) <= 1e-10 * abs(loss)
    assert sorted(graph_grads) == sorted(grads)
    for name, grad in grads.items():
        np.testing.assert_allclose(graph_grads[name], grad, rtol=1e-10, atol=1e-13, err_msg=name)


def test_the_reference_backward_is_right():
    """The hand-written backward against centered differences, so the reference is checked too."""
    g = graph_gpt(fused=True)
    params = {k: v.copy() for k, v in g.params.items()}
    tokens, targets = batch(np.random.default_rng(3), T=4)
    _, grads = reference_loss_and_grads(params, tokens, targets)
    rng = np.random.default_rng(4)
    for name in ("gpt.tokens.table", "gpt.block1.attn.q.W", "gpt.block2.ln1.gamma", "gpt.block1.mlp.fc.b"):
        p = params[name].reshape(-1)
        for i in rng.choice(p.size, 3, replace=False):
            saved = p[i]
            p[i] = saved + 1e-6
            plus = reference_loss_and_grads(params, tokens, targets)[0]
            p[i] = saved - 1e-6
            minus = reference_loss_and_grads(params, tokens, targets)[0]
            p[i] = saved
            assert abs((plus - minus) / 2e-6 - grads[name].reshape(-1)[i]) < 1e-7, name


def test_parameters_after_five_adamw_steps_match_the_numpy_reference():
    g = graph_gpt(fused=True)
    reference = {k: v.copy() for k, v in g.params.items()}
    settings = dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)
    no_decay = [name for name, value in g.params.items() if value.ndim < 2]  # biases and layer norms, as nanoGPT
    graph_optimizer = AdamW(g.params, no_decay=no_decay, **settings)
    reference_optimizer = ReferenceAdamW(reference, no_decay=no_decay, **settings)
    rng = np.random.default_rng(5)
    for _ in range(5):
        tokens, targets = batch(rng)
        graph_loss = g.forward({"tokens": tokens, "targets": targets})
        graph_optimizer.step(g.backward())
        loss, grads = reference_loss_and_grads(reference, tokens, targets)
        reference_optimizer.step(grads)
        assert abs(graph_loss - loss) <= 1e-10 * abs(loss)
    start = graph_gpt(fused=True).params
    for name, value in reference.items():
        # Every parameter moved, except the key biases: adding q.bk to every score of a row
        # leaves its softmax unchanged, so their gradient is 0 up to rounding (1e-17), which
        # Adam's division by sqrt(v) + eps turns into steps of 1e-11 that differ by rounding.
        key_bias = name.endswith("attn.k.b")
        assert key_bias or not np.allclose(value, start[name]), name
        np.testing.assert_allclose(g.params[name], value, rtol=1e-10, atol=1e-10 if key_bias else 1e-13, err_msg=name)
