"""The transformer's gates (issue 21): values against the formulas PyTorch documents, fast paths against plain ones, misuse."""

import math
import sys

import numpy as np
import pytest
from scipy import special

import gates
from gates.activations import BLOCK, erf, in_blocks, normal_cdf_and_pdf_float32
from gates.attention import MASKED_SCORE
from gates.linalg import column_sums, row_mean, row_sums
from graph import ComputationalGraph
from graph.errors import GateForwardError


def run_gate(gate, *inputs, upstream=None):
    """(output, gradients) of one gate on its own."""
    out = gate.forward(*inputs)
    upstream = np.ones_like(out) if upstream is None else upstream
    return out, gate.backward(upstream)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------- layer norm


def test_layer_norm_matches_torch_formula_on_any_leading_shape():
    rng = np.random.default_rng(0)
    x, gamma, beta = rng.standard_normal((2, 3, 4, 6)) * 3 + 1, rng.standard_normal(6), rng.standard_normal(6)
    out = gates.LayerNormGate(eps=1e-5).forward(x, gamma, beta)
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)  # torch: the biased variance
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5) * gamma + beta, rtol=1e-12, atol=1e-12)
    assert out.shape == x.shape


def test_layer_norm_gradients_of_gamma_and_beta_are_sums_over_rows():
    rng = np.random.default_rng(1)
    x, gamma, beta = rng.standard_normal((3, 5, 4)), rng.standard_normal(4), rng.standard_normal(4)
    upstream = rng.standard_normal((3, 5, 4))
    gate = gates.LayerNormGate()
    gate.forward(x, gamma, beta)
    dx, dgamma, dbeta = gate.backward(upstream)
    x_hat = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(dbeta, upstream.sum(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(dgamma, (upstream * x_hat).sum(axis=(0, 1)), rtol=1e-12)
    # Each row's dx sums to zero: shifting a row does not change its normalized value.
    np.testing.assert_allclose(dx.sum(axis=-1), 0.0, atol=1e-12)


def test_row_mean_by_product_agrees_with_numpy_mean():
    x = np.random.default_rng(2).standard_normal((50, 128)).astype(np.float32)
    assert row_mean(x).dtype == np.float32
    np.testing.assert_allclose(row_mean(x), x.mean(axis=1), rtol=1e-5, atol=1e-6)


def test_layer_norm_rejects_gamma_of_the_wrong_size():
    g = ComputationalGraph()
    x = g.add_input("x")
    g.add_gate(gates.LayerNormGate(), x, g.add_param("gamma", np.ones(3)), g.add_param("beta", np.zeros(3)), name="ln")
    with pytest.raises(GateForwardError, match=r"gate 'ln' \(LayerNormGate\).*gamma and beta must be \(4,\)"):
        g.forward({"x": np.ones((2, 4))})
    assert g.forward({"x": np.arange(6.0).reshape(2, 3)}).shape == (2, 3)  # the graph keeps working


def test_layer_norm_rejects_a_non_positive_eps():
    with pytest.raises(ValueError, match="eps must be positive"):
        gates.LayerNormGate(eps=0.0)


# ---------------------------------------------------------------------- GELU


def test_exact_gelu_is_x_times_the_normal_cdf():
    x = np.linspace(-5, 5, 41)
    out = gates.GELUGate().forward(x)
    np.testing.assert_allclose(out, x * 0.5 * (1 + special.erf(x / math.sqrt(2))), rtol=1e-14, atol=1e-15)
    assert out[20] == 0.0 and abs(out[0]) < 1e-5 and abs(out[-1] - 5.0) < 1e-5


def test_tanh_gelu_is_pytorchs_formula_and_close_to_the_exact_one():
    x = np.linspace(-5, 5, 41)
    out = gates.GELUGate(approximate="tanh").forward(x)
    expected = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(out, expected, rtol=1e-14, atol=1e-15)
    assert np.max(np.abs(out - gates.GELUGate().forward(x))) < 1e-3


def test_fast_float32_normal_cdf_and_pdf_agree_with_the_exact_ones():
    x = np.linspace(-15, 15, 300_001).astype(np.float32)  # several blocks, and both tails
    cdf, pdf = normal_cdf_and_pdf_float32(x)
    assert cdf.dtype == pdf.dtype == np.float32
    exact = x.astype(np.float64)
    # 7.5e-8 from the formula, the rest from float32 roundings of the polynomial (eps 1.2e-7 near 1)
    assert np.max(np.abs(cdf - 0.5 * (1 + special.erf(exact / math.sqrt(2))))) < 4e-7
    assert np.max(np.abs(pdf - np.exp(-exact**2 / 2) / math.sqrt(2 * math.pi))) < 1e-7
    assert cdf[0] == 0.0 and cdf[-1] == 1.0 and np.all(np.diff(cdf) >= 0)


def test_float32_gelu_agrees_with_the_float64_exact_one():
    x = np.random.default_rng(3).standard_normal((4, 64)) * 3
    for approximate in ("none", "tanh"):
        out64, (dx64,) = run_gate(gates.GELUGate(approximate), x)
        out32, (dx32,) = run_gate(gates.GELUGate(approximate), x.astype(np.float32), upstream=np.ones((4, 64), np.float32))
        assert out32.dtype == dx32.dtype == np.float32
        np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dx32, dx64, rtol=1e-5, atol=1e-6)


def test_gelu_rejects_an_unknown_approximation():
    with pytest.raises(ValueError, match='approximate must be "none" or "tanh"'):
        gates.GELUGate(approximate="sigmoid")


def test_exact_gelu_without_scipy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)  # import scipy now fails
    with pytest.raises(ImportError, match=r'pip install -e "\.\[transformer\]"'):
        erf(np.zeros(3))


# ------------------------------------------------------------------- softmax


def test_softmax_rows_sum_to_one_and_large_scores_do_not_overflow():
    x = np.array([[1e4, 1e4 - 1.0, 0.0], [-1e4, 0.0, 1.0]])
    out = gates.SoftmaxGate().forward(x)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out[0, :2], softmax(np.array([1.0, 0.0])), rtol=1e-12)


def test_softmax_along_another_axis():
    x = np.random.default_rng(4).standard_normal((3, 4))
    np.testing.assert_allclose(gates.SoftmaxGate(axis=0).forward(x), softmax(x, axis=0), rtol=1e-12)


def test_softmax_rejects_an_axis_out_of_range():
    g = ComputationalGraph()
    g.add_gate(gates.SoftmaxGate(axis=2), g.add_input("x"), name="p")
    with pytest.raises(GateForwardError, match=r"gate 'p' \(SoftmaxGate\).*axis 2 is out of range.*\(3, 4\)"):
        g.forward({"x": np.ones((3, 4))})


# --------------------------------------------------------------- matmul


def test_batched_matmul_sums_the_gradient_of_a_shared_matrix_over_the_stack():
    rng = np.random.default_rng(5)
    x, W = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))
    upstream = rng.standard_normal((2, 3, 5))
    out, (dx, dW) = run_gate(gates.MatMulGate(), x, W, upstream=upstream)
    np.testing.assert_allclose(out, np.matmul(x, W), rtol=1e-12)
    np.testing.assert_allclose(dW, x[0].T @ upstream[0] + x[1].T @ upstream[1], rtol=1e-12)
    np.testing.assert_allclose(dx, upstream @ W.T, rtol=1e-12)


def test_batched_matmul_attention_shapes():
    rng = np.random.default_rng(6)
    q, kT = rng.standard_normal((2, 4, 8, 3)), rng.standard_normal((2, 4, 3, 8))
    out, (dq, dkT) = run_gate(gates.MatMulGate(), q, kT)
    assert out.shape == (2, 4, 8, 8) and dq.shape == q.shape and dkT.shape == kT.shape


def test_matmul_rejects_mismatched_stacks():
    g = ComputationalGraph()
    g.add_gate(gates.MatMulGate(), g.add_input("q"), g.add_input("k"), name="scores")
    with pytest.raises(GateForwardError, match=r"gate 'scores' \(MatMulGate\).*\(2, 3, 4\) by W \(3, 4, 5\)"):
        g.forward({"q": np.ones((2, 3, 4)), "k": np.ones((3, 4, 5))})


# ------------------------------------------------------------ shape gates


def test_head_split_and_merge_round_trip():
    x = np.arange(2 * 3 * 8.0).reshape(2, 3, 8)
    heads = gates.UnflattenGate((4, -1)).forward(x)
    assert heads.shape == (2, 3, 4, 2)
    per_head = gates.TransposeGate((0, 2, 1, 3)).forward(heads)
    assert per_head.shape == (2, 4, 3, 2) and per_head[1, 2, 0, 1] == x[1, 0, 2 * 2 + 1]
    back = gates.FlattenLastGate(2).forward(gates.TransposeGate((0, 2, 1, 3)).forward(per_head))
    np.testing.assert_array_equal(back, x)


def test_transpose_backward_uses_the_inverse_permutation():
    gate = gates.TransposeGate((2, 0, 1))
    x = np.random.default_rng(7).standard_normal((2, 3, 4))
    out = gate.forward(x)
    (dx,) = gate.backward(out)
    np.testing.assert_array_equal(dx, x)


def test_shape_gates_reject_misuse():
    with pytest.raises(ValueError, match="permutation"):
        gates.TransposeGate((0, 0, 1))
    with pytest.raises(ValueError, match=r"axes \(1, 0\) are for 2-D values.*\(2, 3, 4\)"):
        gates.TransposeGate((1, 0)).forward(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"cannot split the last axis of x \(2, 6\) into \(4, -1\)"):
        gates.UnflattenGate((4, -1)).forward(np.ones((2, 6)))
    with pytest.raises(ValueError, match="at most one -1"):
        gates.UnflattenGate((-1, -1))


# --------------------------------------------------------------- attention


def attention_reference(q, k, v, causal):
    """softmax(q k^T / sqrt(D) + mask) v with mask -inf above the diagonal: torch's documented formula."""
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if causal:
        s = s + np.where(np.tri(*s.shape[-2:], dtype=bool), 0.0, -np.inf)
    return softmax(s) @ v


@pytest.mark.parametrize("causal", [True, False])
def test_fused_attention_matches_the_formula(causal):
    rng = np.random.default_rng(8)
    q, k, v = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
    out = gates.ScaledDotProductAttentionGate(causal=causal).forward(q, k, v)
    np.testing.assert_allclose(out, attention_reference(q, k, v, causal), rtol=1e-12, atol=1e-14)


def test_causal_attention_first_position_sees_only_itself():
    rng = np.random.default_rng(9)
    q, k, v = (rng.standard_normal((1, 4, 3)) for _ in range(3))
    out = gates.ScaledDotProductAttentionGate().forward(q, k, v)
    np.testing.assert_allclose(out[0, 0], v[0, 0], rtol=1e-14)


def test_fused_attention_equals_the_composed_gates_values_and_gradients():
    """mask, scale, softmax and two products, gate by gate, against the fused gate (float64, 1e-10)."""
    rng = np.random.default_rng(10)
    q, k, v = (rng.standard_normal((2, 2, 6, 4)) for _ in range(3))
    upstream = rng.standard_normal((2, 2, 6, 4))
    fused, fused_grads = run_gate(gates.ScaledDotProductAttentionGate(), q, k, v, upstream=upstream)
    chain = [gates.MatMulGate(), gates.MultiplyGate(), gates.CausalMaskGate(), gates.SoftmaxGate(), gates.MatMulGate()]
    kT = np.swapaxes(k, -1, -2)
    scores = chain[0].forward(q, kT)
    scaled = chain[1].forward(scores, np.float64(0.5))
    p = chain[3].forward(chain[2].forward(scaled))
    out = chain[4].forward(p, v)
    dp, dv = chain[4].backward(upstream)
    (dscaled,) = chain[2].backward(chain[3].backward(dp)[0])
    dscores = chain[1].backward(dscaled)[0]
    dq, dkT = chain[0].backward(dscores)
    np.testing.assert_allclose(fused, out, rtol=1e-10, atol=1e-12)
    for got, want in zip(fused_grads, (dq, np.swapaxes(dkT, -1, -2), dv)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_causal_mask_writes_a_finite_score_that_softmax_turns_into_zero():
    x = np.random.default_rng(11).standard_normal((3, 3)).astype(np.float32)
    masked = gates.CausalMaskGate().forward(x)
    assert masked.dtype == np.float32 and masked[0, 2] == np.float32(MASKED_SCORE) and masked[2, 0] == x[2, 0]
    p = gates.SoftmaxGate().forward(masked)
    assert p[0, 1] == 0.0 and p[0, 0] == 1.0


def test_row_sums_by_product_agree_with_numpy_sum():
    x = np.random.default_rng(12).standard_normal((2, 3, 5, 7))
    np.testing.assert_allclose(row_sums(x), x.sum(axis=-1), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_sums_by_product_agree_with_numpy_sum(dtype):
    x = np.random.default_rng(16).standard_normal((768, 5)).astype(dtype)
    sums = column_sums(x)
    assert sums.dtype == dtype and sums.shape == (5,)
    np.testing.assert_allclose(sums, x.astype(np.float64).sum(axis=0), rtol=1e-12 if dtype == np.float64 else 1e-5)
    np.testing.assert_array_equal(column_sums(np.zeros((0, 3), dtype)), np.zeros(3))


def test_attention_rejects_mismatched_q_k_v():
    g = ComputationalGraph()
    g.add_gate(gates.ScaledDotProductAttentionGate(), g.add_input("q"), g.add_input("k"), g.add_input("v"), name="att")
    with pytest.raises(GateForwardError, match=r"gate 'att' \(ScaledDotProductAttentionGate\).*got q \(2, 5, 4\), k \(2, 5, 3\)"):
        g.forward({"q": np.ones((2, 5, 4)), "k": np.ones((2, 5, 3)), "v": np.ones((2, 5, 4))})
    with pytest.raises(GateForwardError, match="same number of axes"):
        g.forward({"q": np.ones((2, 5, 4)), "k": np.ones((5, 4)), "v": np.ones((2, 5, 4))})


def test_position_embedding_reads_the_first_T_rows_and_refuses_more_than_the_context():
    table = np.arange(12.0).reshape(4, 3)
    gate = gates.PositionEmbeddingGate()
    np.testing.assert_array_equal(gate.forward(np.zeros((2, 3)), table), table[:3])
    _, dtable = gate.backward(np.ones((3, 3)))
    np.testing.assert_array_equal(dtable, [[1, 1, 1]] * 3 + [[0, 0, 0]])
    with pytest.raises(ValueError, match="5 positions, but the table has rows for 4"):
        gate.forward(np.zeros((2, 5)), table)


def test_gelu_in_blocks_gives_the_same_numbers_as_over_the_whole_array():
    """An array of more than one block (gates.activations.BLOCK values): blocks change nothing, not even rounding."""
    x = np.random.default_rng(13).standard_normal(2 * BLOCK + 123)
    upstream = np.random.default_rng(14).standard_normal(x.shape)
    gate = gates.GELUGate()
    out = gate.forward(x)
    (dx,) = gate.backward(upstream)
    cdf = 0.5 * (1.0 + special.erf(x * (1.0 / math.sqrt(2.0))))
    np.testing.assert_array_equal(out, x * cdf)
    local = np.exp(-0.5 * (x * x)) * x * (1.0 / math.sqrt(2.0 * math.pi)) + cdf
    np.testing.assert_allclose(dx, local * upstream, rtol=1e-15, atol=0)
    whole = in_blocks(np.tanh, x.astype(np.float32))
    assert whole.dtype == np.float32 and np.array_equal(whole, np.tanh(x.astype(np.float32)))


def test_linear_gate_equals_matmul_then_add():
    rng = np.random.default_rng(15)
    x, W, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    upstream = rng.standard_normal((2, 3, 5))
    out, (dx, dW, db) = run_gate(gates.LinearGate(), x, W, b, upstream=upstream)
    product, (dx_product, dW_product) = run_gate(gates.MatMulGate(), x, W, upstream=upstream)
    np.testing.assert_allclose(out, gates.AddGate().forward(product, b), rtol=1e-14)
    np.testing.assert_allclose(dx, dx_product, rtol=1e-14)
    np.testing.assert_allclose(dW, dW_product, rtol=1e-14)
    np.testing.assert_allclose(db, upstream.sum(axis=(0, 1)), rtol=1e-14)


def test_linear_gate_rejects_a_bias_of_the_wrong_size():
    g = ComputationalGraph()
    g.add_gate(gates.LinearGate(), g.add_input("x"), g.add_input("W"), g.add_input("b"), name="fc")
    with pytest.raises(GateForwardError, match=r"gate 'fc' \(LinearGate\).*W \(4, 5\) and b \(4,\)"):
        g.forward({"x": np.ones((2, 4)), "W": np.ones((4, 5)), "b": np.ones(4)})
