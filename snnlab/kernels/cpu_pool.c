/* 2 x 2 average pooling, stride 2, of a contiguous [P, H, W] CPU tensor (P = N * C planes, H and W even), in the
   floating-point operations of PyTorch's avg_pool2d on the CPU (snnlab.layers._AvgPool2x2 documents and tests
   them): forward ((x00 + x01) + x10) + x11, times 1/4; backward g / 4 to each of the four inputs. One pass over
   memory each way (the PyTorch ops it replaces take four strided passes). */
#include <stdint.h>

#define DEFINE_POOL(T_, SUF)                                                                                    \
void pool_forward_##SUF(const T_* x, T_* y, int64_t P, int64_t H, int64_t W, int threads) {                  \
    const int64_t Ho = H / 2, Wo = W / 2;                                                                       \
    _Pragma("omp parallel for num_threads(threads) schedule(static)")                                           \
    for (int64_t p = 0; p < P; p++) {                                                                           \
        const T_* xi = x + p * H * W;                                                                           \
        T_* yi = y + p * Ho * Wo;                                                                               \
        for (int64_t i = 0; i < Ho; i++) {                                                                      \
            const T_* r0 = xi + 2 * i * W;                                                                      \
            const T_* r1 = r0 + W;                                                                              \
            T_* o = yi + i * Wo;                                                                                \
            for (int64_t j = 0; j < Wo; j++)                                                                    \
                o[j] = (((r0[2 * j] + r0[2 * j + 1]) + r1[2 * j]) + r1[2 * j + 1]) * (T_)0.25;                  \
        }                                                                                                       \
    }                                                                                                           \
}                                                                                                               \
                                                                                                                \
void pool_backward_##SUF(const T_* g, T_* gx, int64_t P, int64_t H, int64_t W, int threads) {                \
    const int64_t Ho = H / 2, Wo = W / 2;                                                                       \
    _Pragma("omp parallel for num_threads(threads) schedule(static)")                                           \
    for (int64_t p = 0; p < P; p++) {                                                                           \
        const T_* gi = g + p * Ho * Wo;                                                                         \
        T_* oi = gx + p * H * W;                                                                                \
        for (int64_t i = 0; i < Ho; i++) {                                                                      \
            T_* r0 = oi + 2 * i * W;                                                                            \
            T_* r1 = r0 + W;                                                                                    \
            for (int64_t j = 0; j < Wo; j++) {                                                                  \
                const T_ q = gi[i * Wo + j] * (T_)0.25;                                                         \
                r0[2 * j] = q; r0[2 * j + 1] = q; r1[2 * j] = q; r1[2 * j + 1] = q;                             \
            }                                                                                                   \
        }                                                                                                       \
    }                                                                                                           \
}

DEFINE_POOL(float, f32)
DEFINE_POOL(double, f64)
