/* BatchNorm2d in training mode on the CPU (float32, contiguous NCHW), computing what PyTorch's own CPU kernels
   compute (aten/src/ATen/native/cpu/batch_norm_kernel.cpp and Normalization.cpp), operation for operation, so that
   the outputs, saved statistics, running statistics and gradients are bitwise PyTorch's. It is faster because:

   * Forward statistics. PyTorch sums each channel in one sequential chain of double additions (x[0,c,0], x[0,c,1],
     ..., x[N-1,c,HW-1]): each addition waits for the previous one. Here the chains of G channels advance together
     (each chain still adds its own values in exactly that order, so every rounding is the same), which keeps the
     adder busy instead of waiting on its latency.
   * The per-element passes (the output, dL/dx) and the backward's per-plane reductions are plain loops that the
     compiler vectorises, with no per-call overhead.

   Backward reductions: PyTorch reduces each (n, c) plane of HW values with vectors of L floats: L lane
   accumulators, a tail added into the first lanes, then a fixed shuffle tree; planes shorter than L are summed in
   order. `lanes` is L (8 in the PyTorch builds measured). Which operations PyTorch's compiler fused into
   multiply-adds was found by comparing against it; snnlab.kernels.cpu_bn checks every result bitwise against
   PyTorch's on test batches once per process before it uses this kernel, and otherwise leaves BatchNorm to
   PyTorch. Built with -ffp-contract=off, so that only the explicit fmaf calls are fused. */
#include <math.h>
#include <stdint.h>

#define G 8          /* channels whose chains advance together */
#define MAXL 16

/* mean[c] = (float)(sum / cnt), var_sum[c] = (float)sum((double)((x - mean)^2)), each sum in PyTorch's order */
static void stats(const float* x, int64_t N, int64_t C, int64_t HW, float* mean, float* var_sum, int threads) {
    const int64_t ngroups = (C + G - 1) / G;
    const double cnt = (double)(N * HW);
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t gi = 0; gi < ngroups; gi++) {
        const int64_t c0 = gi * G, g = (C - c0 < G) ? C - c0 : G;
        double acc[G] = {0};
        float m[G] = {0};
        for (int64_t n = 0; n < N; n++) {
            const float* base = x + (n * C + c0) * HW;
            if (g == G) {
                for (int64_t i = 0; i < HW; i++)
                    for (int j = 0; j < G; j++) acc[j] += (double)base[j * HW + i];
            } else {
                for (int64_t i = 0; i < HW; i++)
                    for (int j = 0; j < g; j++) acc[j] += (double)base[j * HW + i];
            }
        }
        for (int j = 0; j < g; j++) { m[j] = (float)(acc[j] / cnt); mean[c0 + j] = m[j]; acc[j] = 0; }
        for (int64_t n = 0; n < N; n++) {
            const float* base = x + (n * C + c0) * HW;
            if (g == G) {
                for (int64_t i = 0; i < HW; i++)
                    for (int j = 0; j < G; j++) { float d = base[j * HW + i] - m[j]; acc[j] += (double)(d * d); }
            } else {
                for (int64_t i = 0; i < HW; i++)
                    for (int j = 0; j < g; j++) { float d = base[j * HW + i] - m[j]; acc[j] += (double)(d * d); }
            }
        }
        for (int j = 0; j < g; j++) var_sum[c0 + j] = (float)acc[j];
    }
}

/* Training-mode forward: y, save_mean, save_invstd, and (when given) the running statistics updated in place.
   w, b, rm, rv may be NULL. momentum is the exponential average factor nn.BatchNorm2d passes. */
void bn_forward_f32(const float* x, float* y, int64_t N, int64_t C, int64_t HW, const float* w, const float* b,
                    float* save_mean, float* save_invstd, float* rm, float* rv, double momentum, double eps,
                    float* alpha, float* beta, int threads) {
    float* var_sum = save_invstd;  /* reused: var_sum first, then invstd */
    stats(x, N, C, HW, save_mean, var_sum, threads);
    const int64_t n = N * HW;
    const float mf = (float)momentum, om = 1.0f - mf;
    for (int64_t c = 0; c < C; c++) {
        const float mean = save_mean[c], vs = var_sum[c];
        const double var = (double)(vs / (float)n);
        const float invstd = (var != 0 || eps != 0) ? (float)(1.0 / sqrt(var + eps)) : 0.0f;
        save_invstd[c] = invstd;
        if (rm) rm[c] = mf * mean + om * rm[c];
        if (rv) { float uv = vs / (float)(n - 1); rv[c] = (float)((double)mf * (double)uv + (double)(om * rv[c])); }
        alpha[c] = invstd * (w ? w[c] : 1.0f);
        beta[c] = fmaf(-mean, alpha[c], b ? b[c] : 0.0f);
    }
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t p = 0; p < N * C; p++) {
        const float a = alpha[p % C], bb = beta[p % C];
        const float* xi = x + p * HW;
        float* yi = y + p * HW;
        for (int64_t i = 0; i < HW; i++) yi[i] = fmaf(xi[i], a, bb);
    }
}

/* PyTorch's horizontal reduction of an L-lane accumulator (vec_reduce_all): lane i + lane (i xor L/2), then xor
   L/4, ..., and lane 0 is the result. */
static inline float tree(float* a, int L) {
    for (int h = L / 2; h >= 1; h /= 2)
        for (int i = 0; i < h; i++) a[i] = a[i] + a[i + h];
    return a[0];
}

/* sum(dy) and sum((x - mean) * dy) over one plane, in PyTorch's reduce_all / map2_reduce_all order */
static inline void plane_sums(const float* dy, const float* x, float mean, int64_t size, int L, float* s, float* d) {
    float as[MAXL], ad[MAXL];
    if (size < L) {  /* vec_reduce_all with a partial vector: lane 0 adds the values in order */
        float ss = dy[0], dd = (x[0] - mean) * dy[0];
        for (int64_t i = 1; i < size; i++) { ss = ss + dy[i]; dd = dd + (x[i] - mean) * dy[i]; }
        *s = ss; *d = dd;
        return;
    }
    for (int j = 0; j < L; j++) { as[j] = dy[j]; ad[j] = (x[j] - mean) * dy[j]; }
    int64_t k = L;
    const int64_t full = size - size % L;
    for (; k < full; k += L)
        for (int j = 0; j < L; j++) { as[j] = as[j] + dy[k + j]; ad[j] = ad[j] + (x[k + j] - mean) * dy[k + j]; }
    for (int j = 0; k + j < size; j++) {  /* the tail, into the first lanes (PyTorch's build fuses this one) */
        as[j] = as[j] + dy[k + j];
        ad[j] = fmaf(x[k + j] - mean, dy[k + j], ad[j]);
    }
    *s = tree(as, L);
    *d = tree(ad, L);
}

/* Training-mode backward. dx, gw, gb may be NULL (not needed). sums: 2*C doubles of scratch. */
void bn_backward_f32(const float* dy, const float* x, float* dx, float* gw, float* gb, int64_t N, int64_t C,
                     int64_t HW, const float* w, const float* save_mean, const float* save_invstd, int lanes,
                     double* sums, int threads) {
    const int64_t n = N * HW;
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        const float mean = save_mean[c];
        double sum = 0, dotp = 0;
        for (int64_t b = 0; b < N; b++) {
            float s, d;
            plane_sums(dy + (b * C + c) * HW, x + (b * C + c) * HW, mean, HW, lanes, &s, &d);
            sum += (double)s;
            dotp += (double)d;
        }
        sums[c] = sum;
        sums[C + c] = dotp;
    }
    if (dx) {
        #pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t p = 0; p < N * C; p++) {
            const int64_t c = p % C;
            const float mean = save_mean[c], invstd = save_invstd[c], wc = w ? w[c] : 1.0f;
            const float k = (float)sums[C + c] * invstd * invstd / (float)n;
            const float grad_mean = (float)(sums[c] / (double)n);
            const float* xi = x + p * HW;
            const float* gi = dy + p * HW;
            float* oi = dx + p * HW;
            for (int64_t i = 0; i < HW; i++) {
                /* (dy - grad_mean - (x - mean) k) invstd w, the subtraction of the product fused */
                oi[i] = fmaf(-(xi[i] - mean), k, gi[i] - grad_mean) * invstd * wc;
            }
        }
    }
    for (int64_t c = 0; c < C; c++) {
        if (gw) gw[c] = (float)(sums[C + c] * (double)save_invstd[c]);
        if (gb) gb[c] = (float)sums[c];
    }
}
