/*
 * ops_linear.c — y = x w^T + b as one GEMM over the flattened batch onto rows holding the bias;
 * backward is three GEMM-shaped products:
 *   dx = g w   ({M,out} x {out,in}),   dw = g^T x   ({out,M} x {M,in}),   db = sum over rows of g.
 * Legend: M = prod(x.shape[:-1]) rows, in = x.shape[-1], out = w.shape[0]. w is passed to BLAS as
 * a transposed view, never copied.
 */
#include "ops_linear.h"

#include <string.h>

#include "autograd.h"
#include "ops_matmul.h"
#include "ops_reduce.h"
#include "ops_shape.h"

static gen_tensor *rows_view(gen_tensor *t, int64_t rows, int64_t cols) {
  return gen_reshape_raw(t, 2, (int64_t[2]){rows, cols});
}

/* saved: x, w; the bias is the optional third input */
static int linear_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *x = gen_node_saved(n, 0), *w = x ? gen_node_saved(n, 1) : NULL;
  if (!w) return -1;
  int64_t in = w->shape[1], out = w->shape[0], m = gen_numel(x) / (in ? in : 1);
  gen_tensor *g2 = rows_view(g, m, out);
  if (!g2) return -1;
  int rc = 0;
  if (gen_edge_live(&n->edges[0])) {
    gen_tensor *dx = gen_matmul_raw(g2, w);
    grad_in[0] = dx ? gen_reshape_raw(dx, x->ndim, x->shape) : NULL;
    gen_release(dx);
    if (!grad_in[0]) rc = -1;
  }
  if (rc == 0 && gen_edge_live(&n->edges[1])) {
    gen_tensor *x2 = rows_view(x, m, in), *gt = gen_transpose_last2_raw(g2);
    grad_in[1] = x2 && gt ? gen_matmul_raw(gt, x2) : NULL;
    gen_release(x2);
    gen_release(gt);
    if (!grad_in[1]) rc = -1;
  }
  if (rc == 0 && n->n_inputs > 2 && gen_edge_live(&n->edges[2])) {
    grad_in[2] = gen_sum_dim_raw(g2, 0, false);
    if (!grad_in[2]) rc = -1;
  }
  gen_release(g2);
  return rc;
}

/* The same three products in differentiable ops, for create_graph. */
static int linear_graph_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  gen_tensor *x = gen_node_saved(n, 0), *w = x ? gen_node_saved(n, 1) : NULL;
  if (!w) return -1;
  int64_t in = w->shape[1], out = w->shape[0], m = gen_numel(x) / (in ? in : 1);
  gen_arena ar = {0}, *A = &ar;
  gen_tensor *g2 = GEN_KEEP(A, gen_reshape(g, 2, (int64_t[2]){m, out}));
  if (gen_edge_live(&n->edges[0])) {
    gen_tensor *dx = GEN_KEEP(A, gen_matmul(g2, w));
    if ((grad_in[0] = GEN_KEEP(A, gen_reshape(dx, x->ndim, x->shape)))) gen_retain(grad_in[0]);
  }
  if (gen_edge_live(&n->edges[1])) {
    gen_tensor *x2 = GEN_KEEP(A, gen_reshape(x, 2, (int64_t[2]){m, in}));
    if ((grad_in[1] = GEN_KEEP(A, gen_matmul(GEN_KEEP(A, gen_transpose_last2(g2)), x2)))) gen_retain(grad_in[1]);
  }
  if (n->n_inputs > 2 && gen_edge_live(&n->edges[2]))
    if ((grad_in[2] = GEN_KEEP(A, gen_sum(g2, 0, false)))) gen_retain(grad_in[2]);
  bool failed = ar.failed;
  gen_arena_free(A);
  return failed ? -1 : 0;
}

gen_tensor *gen_linear(gen_tensor *x, gen_tensor *w, gen_tensor *b) {
  char sx[GEN_SHAPE_STR_MAX], sw[GEN_SHAPE_STR_MAX];
  if (w->ndim != 2) return gen_fail("weight must be {out, in}, got %s", gen_shape_str(sw, sizeof sw, w->ndim, w->shape));
  if (x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
    return gen_fail("input %s does not end in the weight's %lld input features (weight %s)",
                    gen_shape_str(sx, sizeof sx, x->ndim, x->shape), (long long)w->shape[1],
                    gen_shape_str(sw, sizeof sw, w->ndim, w->shape));
  if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
    return gen_fail("bias %s does not match the weight's %lld outputs", gen_shape_str(sx, sizeof sx, b->ndim, b->shape),
                    (long long)w->shape[0]);
  if (x->dtype != w->dtype || (b && b->dtype != w->dtype) || !gen_dtype_is_float(w->dtype))
    return gen_fail("input, weight and bias must share one float dtype (got %s, %s%s%s)", gen_dtype_name(x->dtype),
                    gen_dtype_name(w->dtype), b ? ", " : "", b ? gen_dtype_name(b->dtype) : "");
  int64_t in = w->shape[1], out = w->shape[0], m = gen_numel(x) / (in ? in : 1);
  if (in == 0) m = gen_numel_of(x->ndim - 1, x->shape);
  gen_tensor *x2 = rows_view(x, m, in), *wt = x2 ? gen_transpose_last2_raw(w) : NULL;
  gen_tensor *cb = wt && b ? gen_contiguous_raw(b) : NULL;
  gen_tensor *y = wt && (cb || !b) ? (cb ? gen_addmm_raw(cb, x2, wt) : gen_matmul_raw(x2, wt)) : NULL;
  gen_release(x2);
  gen_release(wt);
  gen_release(cb);
  if (!y) return NULL;
  int64_t shape[GEN_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[x->ndim - 1] = out;
  gen_tensor *res = gen_reshape_raw(y, x->ndim, shape);
  gen_release(y);
  if (!res) return NULL;
  return gen_record(res, &(gen_record_args){.op = GEN_OP_LINEAR,
                                            .backward = linear_backward,
                                            .graph_backward = linear_graph_backward,
                                            .inputs = b ? GEN_TENSORS(x, w, b) : GEN_TENSORS(x, w),
                                            .saved = GEN_TENSORS(x, w)});
}
