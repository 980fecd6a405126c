"""Transformer layers (issue 21): attention composed and fused, blocks, shared embeddings, nanoGPT's initialization."""

import math

import numpy as np
import pytest

from gates import ScaledDotProductAttentionGate
from graph import ComputationalGraph, check_gates
from graph.checking import gradcheck
from graph.errors import GateForwardError
from graph.layers import causal_self_attention, gpt, transformer_block

V, LAYERS, HEADS, WIDTH, CONTEXT = 7, 2, 2, 8, 5


def tiny_gpt(fused, dtype=np.float64, seed=0, layers=LAYERS):
    """A two-block GPT with a loss; (graph, logits node)."""
    g = ComputationalGraph(dtype=dtype)
    tokens = g.add_input("tokens", requires_grad=False)
    targets = g.add_input("targets", requires_grad=False)
    logits, loss = gpt(g, tokens, V, layers, HEADS, WIDTH, CONTEXT, np.random.default_rng(seed), targets, fused=fused)
    g.output = loss
    return g, logits


def text_batch(seed=1, B=3, T=CONTEXT):
    rng = np.random.default_rng(seed)
    return {"tokens": rng.integers(0, V, (B, T)).astype(float), "targets": rng.integers(0, V, (B, T)).astype(float)}


def shake(g, seed=2, scale=0.3):
    """Move every parameter away from its initial value, so gammas are not 1 and biases not 0."""
    rng = np.random.default_rng(seed)
    for value in g.params.values():
        value += scale * rng.standard_normal(value.shape)


def test_composed_and_fused_attention_give_equal_values_and_gradients():
    fused, _ = tiny_gpt(fused=True)
    composed, _ = tiny_gpt(fused=False)
    assert sorted(fused.params) == sorted(composed.params)
    shake(fused)
    shake(composed)
    feeds = text_batch()
    np.testing.assert_allclose(fused.forward(feeds), composed.forward(feeds), rtol=1e-10)
    fused_grads, composed_grads = fused.backward(), composed.backward()
    for name in fused.params:
        np.testing.assert_allclose(fused_grads[name], composed_grads[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_the_composed_attention_shows_every_step(tmp_path):
    g = ComputationalGraph()
    x = g.add_input("x")
    causal_self_attention(g, x, width=4, heads=2, name="attn", rng=np.random.default_rng(0), fused=False)
    g.forward({"x": np.random.default_rng(1).standard_normal((1, 3, 4))})
    g.backward(np.ones((1, 3, 4)))
    text = g.explain()
    for step in ("attn.scores", "attn.scaled", "attn.masked", "attn.weights", "attn.mixed"):
        assert step in text
    picture = g.draw(str(tmp_path / "attention.png"))
    assert (tmp_path / "attention.png").stat().st_size > 0, picture
    weights = g.value("attn.weights")  # (B, H, T, T): each row a distribution over earlier positions
    assert weights.shape == (1, 2, 3, 3) and weights[0, 0, 0, 1] == 0.0
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0)


class MisscaledAttentionGate(ScaledDotProductAttentionGate):
    """A fused attention whose backward forgets the 1 / sqrt(D) in dq: a bug check_gates must find."""

    def backward(self, upstream):
        dq, dk, dv = super().backward(upstream)
        return dq * math.sqrt(self.k.shape[-1]), dk, dv


def test_check_gates_names_the_broken_fused_gate_and_nothing_else():
    feeds = text_batch()
    right, _ = tiny_gpt(fused=True)
    shake(right)
    assert check_gates(right, feeds)
    g, _ = tiny_gpt(fused=True)
    g.node("gpt.block2.attn.attention").gate.__class__ = MisscaledAttentionGate  # break one gate, before any pass
    shake(g)
    g.forward(feeds)
    right.forward(feeds)
    name = "gpt.block2.attn.q.W"
    assert not np.allclose(g.backward()[name], right.backward()[name])  # the model's gradient is wrong
    result = check_gates(g, feeds)
    assert result.wrong == ["gpt.block2.attn.attention"]


@pytest.mark.slow
def test_the_whole_model_against_finite_differences():
    for fused in (True, False):
        g, _ = tiny_gpt(fused=fused, layers=1)
        shake(g)
        result = gradcheck(g, text_batch())
        assert result, str(result)


def test_the_output_head_shares_the_token_table_and_its_gradients_add():
    g, _ = tiny_gpt(fused=True)
    assert not any("head" in name for name in g.params)
    g.forward(text_batch())
    grads = g.backward()
    from_embedding = g.gradients_sent("gpt.tokens")[1]
    from_head = g.gradients_sent("gpt.head.W")[0]
    assert np.abs(from_embedding).sum() > 0 and np.abs(from_head).sum() > 0
    np.testing.assert_allclose(grads["gpt.tokens.table"], from_embedding + from_head, rtol=1e-12)


def test_initialization_is_nanogpts():
    layers, width = 4, 128
    g = ComputationalGraph()
    gpt(g, g.add_input("tokens", requires_grad=False), 65, layers, 4, width, 64, np.random.default_rng(0))
    params = g.params
    per_block = 4 * (width * width + width) + 2 * 2 * width + (width * 4 * width + 4 * width) + (4 * width * width + width)
    assert sum(p.size for p in params.values()) == 65 * width + 64 * width + layers * per_block + 2 * width
    for name, value in params.items():
        if name.endswith((".b", ".beta")):
            assert not value.any(), name
        elif name.endswith(".gamma"):
            assert (value == 1.0).all(), name
        else:
            residual = name.endswith(("attn.proj.W", "mlp.proj.W"))
            expected = 0.02 / math.sqrt(2 * layers) if residual else 0.02
            assert abs(value.std() / expected - 1.0) < 0.1, (name, value.std())


def test_float32_model_stays_float32():
    g, logits = tiny_gpt(fused=True, dtype=np.float32)
    loss = g.forward(text_batch())
    assert loss.dtype == np.float32 and g.value(logits).dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in g.backward().values())


def test_shorter_sequences_run_and_longer_ones_are_refused():
    g, logits = tiny_gpt(fused=True)
    g.forward(text_batch(T=3))
    assert g.value(logits).shape == (3, 3, V)
    with pytest.raises(GateForwardError, match=r"gpt\.positions.*6 positions, but the table has rows for 5"):
        g.forward(text_batch(T=CONTEXT + 1))


def test_a_position_sees_only_the_past():
    g, logits = tiny_gpt(fused=True)
    shake(g)
    feeds = text_batch()
    g.forward(feeds)
    before = np.array(g.value(logits))
    feeds["tokens"][:, -1] = (feeds["tokens"][:, -1] + 1) % V  # change only the last character
    g.forward(feeds)
    np.testing.assert_allclose(g.value(logits)[:, :-1], before[:, :-1], rtol=1e-12)
    assert not np.allclose(g.value(logits)[:, -1], before[:, -1])


def test_layers_reject_heads_that_do_not_divide_the_width():
    g = ComputationalGraph()
    with pytest.raises(ValueError, match=r"heads \(3\) must divide the width \(8\)"):
        transformer_block(g, g.add_input("x"), 8, 3, "block", np.random.default_rng(0))
    with pytest.raises(ValueError, match="layers must be a positive integer"):
        gpt(g, "x", 5, 0, 2, 8, 4, np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        gpt(g, "x", 5, 1, 2, 8, 4, rng=0)
