/* The fused multi-step LIF on the CPU: the time loop of snnlab.fused in C, one pass over memory each way.

   x, spk, mem, grad_spk, grad_x are [T, N] row-major (time first, N = everything else). The neurons are cut into
   blocks of BLOCK; a block's post-reset membrane (forward) or dL/du[t+1] (backward) stays in a small array
   while the block's T steps run, so every tensor is read or written exactly once.

   Forward, bitwise the PyTorch path (snnlab.fused._forward_torch):
       u[0] = I[0];  u[t] = fma(p[t-1], tau, I[t])   (torch.add(I, p, alpha=tau) is one fused multiply-add)
       s[t] = u[t] >= c          c = v_th for fire=">=", the next value of the type above v_th for fire=">"
                                 (strict firing: u > v_th <=> u >= nextafter(v_th, inf) for every u, NaN
                                 included; snnlab.kernels.compare_threshold), so one comparison serves both rules
       p[t] = u[t] - u[t] s[t]  (hard)   or   u[t] - v_th s[t]  (subtract)
   Backward, the adjoint recurrence (A) of snnlab.fused in the PyTorch path's operations (bitwise its gradients
   for rectangle, triangle and atan; sigmoid and gaussian use vexpf below in float32 and libm's exp in float64,
   equal to rounding, with zeros where PyTorch's are). Built with -ffp-contract=off so that
   only the explicit fmas are fused.
   Shapes (snnlab.kernels.shape_id): 0 rectangle, 1 triangle, 2 sigmoid, 3 atan, 4 gaussian; their constants
   p1, p2 are computed in Python from the width (cpu_lif._shape_parameters). */
#include <math.h>
#include <stdint.h>

#define BLOCK 1024
#define INLINE static inline __attribute__((always_inline))

/* exp for float32 in branch-free operations the compiler vectorises (the C library's expf is a scalar call):
   n = round(x / ln 2), r = x - n ln 2 in two parts (Cody-Waite), e^r by Cephes' degree-6 polynomial, then the
   scale 2^n applied as two halves so that results in the subnormal range round once, as a correctly rounded exp
   would, and below about -104 become 0. Within a few ulp of exp over the normal range (tests/test_cpu_kernel.py). */
INLINE float bits_to_float(int32_t i) { float f; __builtin_memcpy(&f, &i, 4); return f; }
INLINE float vexpf(float x) {
    x = x < -104.0f ? -104.0f : x;  /* ternaries, not fminf/fmaxf, vectorise; a NaN passes through */
    x = x > 88.7228317f ? 88.7228317f : x;
    float n = __builtin_rintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    float y = fmaf(p * r, r, r) + 1.0f;
    int32_t k = (int32_t)n, k1 = k >> 1, k2 = k - k1;           /* 2^k = 2^k1 2^k2, each a normal float */
    return (y * bits_to_float((k1 + 127) << 23)) * bits_to_float((k2 + 127) << 23);
}

/* Each row loop gets its flags as constants (the callers below spell out every combination), so that the
   compiler drops the branches and vectorises the loop. */
#define DEFINE_LIF(T_, SUF, FMA, EXP, OVF)                                                                          \
INLINE void fwd_row_##SUF(const T_* xi, T_* si, T_* mi, T_* p, int64_t n, T_ tau, T_ vth, T_ vcmp,            \
                          const int first, const int hard, const int keep) {                                    \
    for (int64_t i = 0; i < n; i++) {                                                                           \
        T_ u = first ? xi[i] : FMA(p[i], tau, xi[i]);                                                           \
        T_ s = u >= vcmp ? (T_)1 : (T_)0;                                                                       \
        si[i] = s;                                                                                              \
        if (keep) mi[i] = u;                                                                                    \
        p[i] = hard ? u - u * s : u - vth * s;                                                                  \
    }                                                                                                           \
}                                                                                                               \
                                                                                                                \
void lif_forward_##SUF(const T_* x, T_* spk, T_* mem, T_* pbuf, int64_t T, int64_t N, double tau_,          \
                       double vth_, double vcmp_, int hard, int threads) {                                      \
    const T_ tau = (T_)tau_, vth = (T_)vth_, vcmp = (T_)vcmp_;                                                  \
    int64_t nblocks = (N + BLOCK - 1) / BLOCK;                                                                  \
    for (int64_t t = 0; t < T; t++) {  /* whole rows in time order: the row buffer p stays in cache */          \
        _Pragma("omp parallel for num_threads(threads) schedule(static)")                                       \
        for (int64_t b = 0; b < nblocks; b++) {                                                                 \
            int64_t lo = b * BLOCK, n = (N - lo < BLOCK) ? N - lo : BLOCK;                                      \
            const T_* xi = x + t * N + lo;                                                                      \
            T_* si = spk + t * N + lo;                                                                          \
            T_* mi = mem ? mem + t * N + lo : 0;                                                                \
            T_* p = pbuf + lo;                                                                                  \
            if (t == 0) {                                                                                       \
                if (mem) { if (hard) fwd_row_##SUF(xi, si, mi, p, n, tau, vth, vcmp, 1, 1, 1);                        \
                           else fwd_row_##SUF(xi, si, mi, p, n, tau, vth, vcmp, 1, 0, 1); }                           \
                else     { if (hard) fwd_row_##SUF(xi, si, mi, p, n, tau, vth, vcmp, 1, 1, 0);                        \
                           else fwd_row_##SUF(xi, si, mi, p, n, tau, vth, vcmp, 1, 0, 0); }                           \
            } else {                                                                                            \
                if (mem) { if (hard) fwd_row_##SUF(xi, si, mi, p, n, tau, vth, vcmp, 0, 1, 1);                        \
                           else fwd_row_##SUF(xi, si, mi, p, n, tau, vth, vcmp, 0, 0, 1); }                           \
                else     { if (hard) fwd_row_##SUF(xi, si, mi, p, n, tau, vth, vcmp, 0, 1, 0);                        \
                           else fwd_row_##SUF(xi, si, mi, p, n, tau, vth, vcmp, 0, 0, 0); }                           \
            }                                                                                                   \
        }                                                                                                       \
    }                                                                                                           \
}                                                                                                               \
                                                                                                                \
/* g[i] = the surrogate derivative at u[i] - v_th, one loop per shape; p1, p2 as snnlab.kernels.cpu_lif passes them,
   in the operations PyTorch's surrogate.grad runs (so that rectangle, triangle and atan are bitwise its values) */ \
static void grad_row_##SUF(const T_* u, T_* g, int64_t n, T_ vth, int shape, T_ p1, T_ p2) {                    \
    switch (shape) {                                                                                            \
    case 0: for (int64_t i = 0; i < n; i++) { T_ x = u[i] - vth;       /* rectangle: (|x| < w/2) * (1/w) */      \
                                              g[i] = (x < p1 && -x < p1) ? p2 : (T_)0; } break;                 \
    case 1: for (int64_t i = 0; i < n; i++) { T_ x = u[i] - vth, a = -(x < 0 ? -x : x) + p1;  /* triangle */     \
                                              g[i] = (a < 0 ? (T_)0 : a) * p2; } break;  /* max(w-|x|,0)/w^2 */ \
    case 2: _Pragma("omp simd")                     /* sigmoid: k sig(kx) sig(-kx) = k e / (1 + e)^2, e = exp(-k|x|) */ \
            for (int64_t i = 0; i < n; i++) { T_ x = u[i] - vth, a = p1 * (x < 0 ? -x : x), e = EXP(-a);       \
                                              /* 0 where PyTorch's sig(-k|x|) is 0: exp(k|x|) overflows */      \
                                              g[i] = a > OVF ? (T_)0 : p1 * e / ((1 + e) * (1 + e)); } break;    \
    case 3: for (int64_t i = 0; i < n; i++) { T_ z = ((u[i] - vth) * p1) / 2;  /* atan: (a/2) / (1 + z^2) */    \
                                              g[i] = ((T_)1 / (z * z + 1)) * p2; } break;                       \
    default: _Pragma("omp simd")                  /* gaussian: exp(-(x / sigma)^2 / 2) / (sqrt(2 pi) sigma) */       \
             for (int64_t i = 0; i < n; i++) { T_ z = (u[i] - vth) / p1;      /* p1 = sigma, p2 = sqrt(2 pi) sigma */ \
                                               g[i] = EXP(-(T_)0.5 * (z * z)) / p2; }                           \
    }                                                                                                           \
}                                                                                                               \
                                                                                                                \
/* du[t] of the adjoint recurrence, in PyTorch's operations (addcmul = fma(value * t1, t2, self); add with alpha =  \
   fma(other, alpha, self)): ntau = -tau, asub = -v_th * tau (rounded as PyTorch rounds its scalars) */          \
INLINE void bwd_row_##SUF(const T_* gi, const T_* ui, const T_* g, const T_* mi, T_* oi, const T_* nxt, int64_t n, \
                          T_ tau, T_ ntau, T_ asub, T_ vcmp, const int last, const int hard, const int detach,  \
                          const int gm) {                                                                       \
    for (int64_t i = 0; i < n; i++) {                                                                           \
        T_ du;                                                                                                  \
        if (last) {                                                                                             \
            du = gi[i] * g[i];                                                                                  \
        } else if (hard) {                                                                                      \
            T_ ns = ui[i] < vcmp ? (T_)1 : (T_)0;                                     /* 1 - s */               \
            T_ base = detach ? gi[i] * g[i] : FMA(ntau * nxt[i], ui[i], gi[i]) * g[i];                         \
            du = FMA(tau * ns, nxt[i], base);                                                                   \
        } else {                                                                                                \
            T_ base = detach ? gi[i] * g[i] : FMA(nxt[i], asub, gi[i]) * g[i];                                  \
            du = FMA(nxt[i], tau, base);                                                                        \
        }                                                                                                       \
        if (gm) du += mi[i];                                                                                    \
        oi[i] = du;                                                                                             \
    }                                                                                                           \
}                                                                                                               \
                                                                                                                \
void lif_backward_##SUF(const T_* gs, const T_* mem, const T_* gm, T_* gx, int64_t T, int64_t N, double tau_,   \
                        double ntau_, double asub_, double vth_, double vcmp_, int hard, int detach, int shape,  \
                        double p1_, double p2_, int threads) {                                                  \
    const T_ tau = (T_)tau_, ntau = (T_)ntau_, asub = (T_)asub_, vth = (T_)vth_, vcmp = (T_)vcmp_;               \
    const T_ p1 = (T_)p1_, p2 = (T_)p2_;                                                                        \
    int64_t nblocks = (N + BLOCK - 1) / BLOCK;                                                                  \
    for (int64_t t = T - 1; t >= 0; t--) {  /* whole rows backwards in time; du[t+1] is the row just written */ \
        _Pragma("omp parallel for num_threads(threads) schedule(static)")                                       \
        for (int64_t b = 0; b < nblocks; b++) {                                                                 \
            T_ g[BLOCK];                                                                                        \
            int64_t lo = b * BLOCK, n = (N - lo < BLOCK) ? N - lo : BLOCK;                                      \
            const T_* gi = gs + t * N + lo;                                                                     \
            const T_* ui = mem + t * N + lo;                                                                    \
            const T_* mi = gm ? gm + t * N + lo : 0;                                                            \
            T_* oi = gx + t * N + lo;                                                                           \
            T_* nxt = t < T - 1 ? gx + (t + 1) * N + lo : oi;                                                   \
            grad_row_##SUF(ui, g, n, vth, shape, p1, p2);                                                         \
            int last = t == T - 1, code = (last << 3) | (hard << 2) | (detach << 1) | (gm != 0);                \
            switch (code) {                                                                                     \
            case 0:  bwd_row_##SUF(gi, ui, g, mi, oi, nxt, n, tau, ntau, asub, vcmp, 0, 0, 0, 0); break;                     \
            case 1:  bwd_row_##SUF(gi, ui, g, mi, oi, nxt, n, tau, ntau, asub, vcmp, 0, 0, 0, 1); break;                     \
            case 2:  bwd_row_##SUF(gi, ui, g, mi, oi, nxt, n, tau, ntau, asub, vcmp, 0, 0, 1, 0); break;                     \
            case 3:  bwd_row_##SUF(gi, ui, g, mi, oi, nxt, n, tau, ntau, asub, vcmp, 0, 0, 1, 1); break;                     \
            case 4:  bwd_row_##SUF(gi, ui, g, mi, oi, nxt, n, tau, ntau, asub, vcmp, 0, 1, 0, 0); break;                     \
            case 5:  bwd_row_##SUF(gi, ui, g, mi, oi, nxt, n, tau, ntau, asub, vcmp, 0, 1, 0, 1); break;                     \
            case 6:  bwd_row_##SUF(gi, ui, g, mi, oi, nxt, n, tau, ntau, asub, vcmp, 0, 1, 1, 0); break;                     \
            case 7:  bwd_row_##SUF(gi, ui, g, mi, oi, nxt, n, tau, ntau, asub, vcmp, 0, 1, 1, 1); break;                     \
            default: if (gm) bwd_row_##SUF(gi, ui, g, mi, oi, nxt, n, tau, ntau, asub, vcmp, 1, 0, 0, 1);                    \
                     else    bwd_row_##SUF(gi, ui, g, mi, oi, nxt, n, tau, ntau, asub, vcmp, 1, 0, 0, 0);                    \
            }                                                                                                   \
        }                                                                                                       \
    }                                                                                                           \
}

DEFINE_LIF(float, f32, fmaf, vexpf, 88.7228317f)
DEFINE_LIF(double, f64, fma, exp, 709.782712893384)
