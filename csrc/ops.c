/* ops.c — the op name table (see ops.h). */
#include "ops.h"

#include <assert.h>

#include "gen.h"

#define GEN_OP_NAME(id, name) name,
const char *const gen_op_names[] = {GEN_OP_LIST(GEN_OP_NAME)};
#undef GEN_OP_NAME

static_assert(GEN_COUNT_OF(gen_op_names) == GEN_OP_COUNT, "every op in ops.h needs a name");

const char *gen_op_name(gen_op op) { return (op >= 0 && op < GEN_OP_COUNT) ? gen_op_names[op] : "?"; }
