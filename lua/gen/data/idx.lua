--- gen.data.idx: the IDX format of MNIST and Fashion-MNIST, gzip-compressed or plain.
--   idx.read(path)                        -> tensor (ubyte -> uint8, sbyte/short/int -> int64,
--                                            float -> float32, double -> float64)
--   idx.write(path, t [, {gzip = true}])  uint8 -> ubyte, int64 -> int (values must fit 32 bits),
--                                            float32 -> float, float64 -> double
-- The C reader validates the header against the bytes before it allocates (see csrc/io_idx.c):
-- corrupt, truncated or lying files raise "gen.data.idx.read: <path>: <what is wrong>".
local core = require "gen.core"

return {
  read = core.idx_read,
  write = core.idx_write,
}
