/*
 * autograd.h — reverse-mode automatic differentiation.
 *
 * A differentiable op computes its result with plain kernels, then hands it to gen_record, which
 * records a node when grad mode is on and some input requires grad (and does nothing otherwise):
 *
 *     typedef struct { int dim; bool keepdim; double scale; } sum_attrs;     -- the op's attributes
 *
 *     gen_tensor *out = ...forward kernel...;
 *     sum_attrs at = {dim, keepdim, scale};
 *     return gen_record(out, &(gen_record_args){.op = GEN_OP_SUM, .backward = sum_backward,
 *                                               .inputs = GEN_TENSORS(a), .saved = GEN_TENSORS(a),
 *                                               .attrs = GEN_ATTRS(&at)});
 *
 *     static int sum_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
 *       const sum_attrs *at = GEN_NODE_ATTRS(n, sum_attrs);
 *       gen_tensor *a = gen_node_saved(n, 0);                               -- NULL if stale
 *       ...
 *     }
 *
 * gen_record owns the error path: on failure it releases out (and the node, and .extra) and
 * returns NULL, so an op can end with `return gen_record(out, ...)`. The attributes are one typed
 * struct per op, copied into the node; GEN_ATTRS checks at compile time that it fits. An op that
 * needs its own result in backward (softmax, exp) lists out among .saved: the node then keeps an
 * alias of out's storage, not out itself, so there is no out -> node -> out cycle. A saved input
 * remembers its version, so backward fails cleanly if it was modified in place since.
 *
 * A node keeps edges, not input tensors: an edge points at the input's own node (non-leaf) or at
 * the leaf tensor that accumulates .grad. Inputs are kept alive only when the op saves them for its
 * backward, so activations nobody needs are freed as soon as Lua drops them.
 *
 * backward(node, grad_out, grad_in) writes a new reference into grad_in[i] for every input i with
 * node->edges[i] live (gen_edge_live), shaped like that input (node->edges[i].shape); it may leave a
 * slot NULL for "zero gradient". It runs with grad mode off, so it may freely call the ordinary ops.
 * It returns 0, or -1 with an error set. An op may also give a graph_backward, the same gradient
 * written with differentiable ops, which gen_grad runs with grad mode on (see "double backward").
 *
 * gen_backward() sorts the graph iteratively (an explicit stack: a 1000-step sampler left in grad
 * mode must not overflow the C stack), runs nodes in reverse topological order, accumulates into
 * leaves' .grad, and then frees each node's saved tensors (unless retain_graph).
 */
#ifndef GEN_AUTOGRAD_H
#define GEN_AUTOGRAD_H

#include <stddef.h>

#include "gen.h"
#include "ops.h"

#define GEN_NODE_MAX_INPUTS 8
#define GEN_NODE_MAX_SAVED  8
/* Bytes of op attributes a node carries (gen_conv_geom and groups, the largest, take 120). */
#define GEN_NODE_ATTR_BYTES 128

typedef struct gen_node gen_node;
typedef int (*gen_backward_fn)(gen_node *node, gen_tensor *grad_out, gen_tensor **grad_in);

typedef struct gen_edge {
  gen_node *node;   /* retained; the input's grad_fn */
  gen_tensor *leaf; /* retained; a leaf that requires grad */
  gen_dtype dtype;
  int ndim;
  int64_t shape[GEN_MAX_DIMS];
  bool skip; /* engine scratch: gen_grad prunes an edge that leads to none of its inputs */
} gen_edge;

struct gen_node {
  int64_t refcount;
  gen_op op;
  gen_backward_fn backward;
  int n_inputs;
  gen_edge edges[GEN_NODE_MAX_INPUTS];
  /* The backward written with differentiable ops, run when a graph of the backward pass is being
   * created (gen_grad with create_graph); NULL when the op does not support it. */
  gen_backward_fn graph_backward;
  int n_saved;
  gen_tensor *saved[GEN_NODE_MAX_SAVED];
  uint64_t saved_version[GEN_NODE_MAX_SAVED];
  bool saved_is_output[GEN_NODE_MAX_SAVED]; /* an alias of the op's own result (no identity) */
  /* the op's attribute struct (GEN_ATTRS / GEN_NODE_ATTRS) */
  _Alignas(max_align_t) unsigned char attrs[GEN_NODE_ATTR_BYTES];
  void *extra; /* op-owned memory too large for attrs, freed with free_extra */
  void (*free_extra)(void *);
  bool released; /* saved state freed by a backward without retain_graph */
  char *site;    /* anomaly mode: where the op was created ("file.lua:12"), malloc'd; else NULL */
  /* engine scratch */
  gen_tensor *grad_accum;
  int64_t pending;
  uint64_t visit_mark;
  bool reach;  /* gen_grad: some edge leads to an input asked for */
  bool target; /* gen_grad: the grad_fn of an input asked for */
};

/* Grad mode (on by default). gen_no_grad in Lua turns it off around a function call. */
/* Anomaly mode (gen.autograd.detect_anomaly): gen_record fails when an op's forward turns finite
 * inputs into NaN or Inf, and the engine fails when a backward turns a finite gradient into NaN or
 * Inf in an input's gradient; both name the op and, in backward, the site the binding recorded with
 * gen_node_set_site. Off by default: it costs a pass over every result. */
bool gen_anomaly_enabled(void);
void gen_set_anomaly_enabled(bool on);
void gen_node_set_site(gen_node *n, const char *site); /* copies site; no-op when out of memory */

bool gen_grad_enabled(void);
void gen_set_grad_enabled(bool on);

bool gen_edge_live(const gen_edge *e);
/* True when grad mode is on and some input requires grad. NULL inputs are ignored. */
bool gen_needs_grad(int n, gen_tensor *const *inputs);

/* ---- recording a node ---- */

typedef struct {
  int n;
  gen_tensor *const *t;
} gen_tensor_list;
/* A list of tensors from its elements: GEN_TENSORS(a, b). */
#define GEN_TENSORS(...)                                                                                                         \
  ((gen_tensor_list){(int)(sizeof((gen_tensor *[]){__VA_ARGS__}) / sizeof(gen_tensor *)), (gen_tensor *[]){__VA_ARGS__}})

typedef struct {
  const void *p;
  size_t size;
} gen_attr_blob;
/* Fails the build when an attribute struct does not fit a node (or needs more alignment). */
#define GEN_ATTR_SIZE_CHECKED(type)                                                                                              \
  (sizeof(type) + 0 * sizeof(struct {                                                                                            \
                    _Static_assert(sizeof(type) <= GEN_NODE_ATTR_BYTES, "op attributes must fit gen_node.attrs");                \
                    _Static_assert(_Alignof(type) <= _Alignof(max_align_t), "op attributes are over-aligned");                   \
                    char c_;                                                                                                     \
                  }))
/* An op's attribute struct, by pointer, for gen_record_args.attrs: GEN_ATTRS(&at). */
#define GEN_ATTRS(ptr) ((gen_attr_blob){(ptr), GEN_ATTR_SIZE_CHECKED(__typeof__(*(ptr)))})
/* The attributes a node was recorded with, typed, for its backward. (Well-defined: the node is
 * heap memory with no declared type, and gen_record copied a `type` object into attrs.) */
#define GEN_NODE_ATTRS(node, type) ((const type *)((node)->attrs + 0 * GEN_ATTR_SIZE_CHECKED(type)))

typedef struct {
  gen_op op;
  gen_backward_fn backward;
  /* Optional: the same backward written with differentiable ops (see "Double backward" below). */
  gen_backward_fn graph_backward;
  gen_tensor_list inputs; /* an edge each, in order; NULL entries are inputs with no gradient */
  /* Kept for backward, fetched with gen_node_saved(node, i) in order. NULL entries are skipped, so
   * optional ones go last. out itself may appear: it is saved without a reference cycle. */
  gen_tensor_list saved;
  gen_attr_blob attrs; /* copied into node->attrs */
  /* Op-owned memory for backward (node->extra), freed with free_extra when the node is done.
   * gen_record takes it over whatever happens: freed on failure and when no node is needed. */
  void *extra;
  void (*free_extra)(void *);
} gen_record_args;

/* Records how out was made, when gen_needs_grad(inputs). Returns out, or NULL when out is NULL or
 * recording fails (out released, an error set). */
gen_tensor *gen_record(gen_tensor *out, const gen_record_args *r);

/* Fetches saved tensor i (for backward), or NULL with an error if it was modified in place or
 * freed. */
gen_tensor *gen_node_saved(gen_node *node, int i);
void gen_node_retain(gen_node *n);
void gen_node_release(gen_node *n);

/* ---- gradient-ready hooks ----
 * Data-parallel training starts reducing a parameter's gradient while backward is still running
 * through earlier layers, so it must know the moment a leaf's .grad is final. A leaf with
 * grad_hook != 0 is watched: before the sweep the engine counts the edges into it from the nodes
 * it will run, counts them down as nodes run (a node whose gradient is zero still counts), and
 * calls ready(leaf) right after the last one has been accumulated, once per backward(). After the
 * sweep it calls end(ok) (ok false when backward failed), whether or not any watched leaf took
 * part, so a listener can wait for the work it started. ready may fail (-1 with an error set):
 * backward stops with that error. One listener pair for the process (the binding dispatches to
 * per-tensor Lua functions by grad_hook); NULL turns them off. */
typedef int (*gen_grad_ready_fn)(gen_tensor *leaf);
typedef int (*gen_backward_end_fn)(bool ok);
void gen_set_grad_hooks(gen_grad_ready_fn ready, gen_backward_end_fn end);

/* grad may be NULL for a one-element root (then it is 1). */
int gen_backward(gen_tensor *root, gen_tensor *grad, bool retain_graph);

/* ---- double backward ----
 * gen_grad returns d(sum_i <outputs[i], grad_outputs[i]>)/d inputs[j] in results[j] (a new
 * reference each; NULL when the input is not reached from the outputs, or reached but given no
 * gradient: used[j] tells the two apart) without touching any leaf's .grad. It runs only the nodes
 * on a path from an output to an input (the other edges are pruned with gen_edge.skip).
 *
 * With create_graph it runs every node's graph_backward with grad mode on, so the gradients it
 * computes are themselves recorded: they are functions of the forward graph's tensors and can be
 * differentiated again. A graph_backward is written with the differentiable ops (gen_mul,
 * gen_conv_transpose2d, ...) on tensors that carry their autograd identity: saved inputs are the
 * input tensors themselves (or gen_node_saved_input for a saved copy), and a saved own result is
 * swapped, for the duration of the call, for an alias whose grad_fn is the node itself. A node
 * without a graph_backward fails the call before anything runs ("create_graph is not supported
 * through <op>").
 *
 * Cycles: the recorded graph points only backwards, at the forward graph (through saved tensors
 * and the aliases), never the reverse: gen_grad writes no .grad and the forward nodes keep no
 * reference to what their backward produced once the sweep ends. So refcounting frees it all.
 * grad_outputs may be NULL, or hold NULL entries, for one-element outputs (then 1). */
int gen_grad(int n_out, gen_tensor *const *outputs, gen_tensor *const *grad_outputs, int n_in, gen_tensor *const *inputs,
             bool create_graph, bool retain_graph, gen_tensor **results, bool *used);

/* For a graph_backward: saved tensor saved_i, which holds the values of input input_i (possibly a
 * contiguous copy made by the forward), as a tensor with that input's autograd identity. New
 * reference, or NULL with an error set. */
gen_tensor *gen_node_saved_input(gen_node *node, int saved_i, int input_i);
/* The temporaries of a graph_backward, freed together: GEN_KEEP(&ar, expr) evaluates expr only
 * while nothing has failed (so a NULL never reaches an op) and keeps its result:
 *     gen_arena ar = {0};
 *     gen_tensor *s = GEN_KEEP(&ar, gen_unary(GEN_UN_SIGMOID, x, 0, 0));
 *     gen_tensor *d = GEN_KEEP(&ar, gen_mul(g, s));
 *     grad_in[0] = gen_arena_take(&ar, d);      -- NULL if anything failed; frees the rest */
#define GEN_ARENA_MAX 64
typedef struct {
  gen_tensor *t[GEN_ARENA_MAX];
  int n;
  bool failed;
} gen_arena;
gen_tensor *gen_arena_keep(gen_arena *a, gen_tensor *t);
#define GEN_KEEP(a, expr) ((a)->failed ? NULL : gen_arena_keep((a), (expr)))
/* A new reference to t (NULL when the arena failed), then every temporary is released. */
gen_tensor *gen_arena_take(gen_arena *a, gen_tensor *t);
void gen_arena_free(gen_arena *a);

/* How many times each op's graph_backward ran inside a second-order check (counting on). */
int64_t gen_graph_backward_count(gen_op op);

/* Errors (and returns -1) when t takes part in autograd and must not be written in place. */
int gen_check_inplace(gen_tensor *t);

/* How many times each op's backward ran inside a gradient check (gen_set_backward_counting on),
 * since start: the coverage meta-test reads it. */
int64_t gen_backward_count(gen_op op);
void gen_set_backward_counting(bool on);

/* Sum g over broadcast dimensions so it has the given shape (the gradient of an expand). */
gen_tensor *gen_sum_to_shape(gen_tensor *g, int ndim, const int64_t *shape);

#endif
