/* optim.h — in-place parameter updates (optim.c). All tensors contiguous, same shape and dtype. */
#ifndef GEN_OPTIM_H
#define GEN_OPTIM_H

#include "gen.h"

typedef struct {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;   /* 1-based step count, for bias correction */
  bool decoupled; /* AdamW: weight decay applied to the parameter, not the gradient */
} gen_adam_config;

typedef struct {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, first_step; /* first_step: the momentum buffer starts as the gradient */
} gen_sgd_config;

typedef struct {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered;
} gen_rmsprop_config;

/* Checks that every non-NULL tensor is contiguous, float, and shaped like p. */
int gen_optim_check(gen_tensor *p, gen_tensor *const *others, int n);
int gen_adam_step(gen_tensor *p, gen_tensor *g, gen_tensor *m, gen_tensor *v, const gen_adam_config *c);
/* buf may be NULL when momentum == 0. */
int gen_sgd_step(gen_tensor *p, gen_tensor *g, gen_tensor *buf, const gen_sgd_config *c);
/* buf: momentum buffer (NULL when momentum == 0); gavg: running mean of g (NULL unless centered). */
int gen_rmsprop_step(gen_tensor *p, gen_tensor *g, gen_tensor *sq, gen_tensor *buf, gen_tensor *gavg,
                     const gen_rmsprop_config *c);
/* ema = decay * ema + (1 - decay) * p */
int gen_ema_update(gen_tensor *ema, gen_tensor *p, double decay);
/* Sum of squares of all elements (in double). */
double gen_sum_squares(gen_tensor *t);

#endif
