/* Fused optimizer steps: every parameter of a group updated by ONE launch, over flat buffers.
 *
 * Kernels only, no host code, no #include: launch.source() puts common.cuh in front of this text.
 * optim/fused.py packs a group's parameters end to end in one array (each Parameter's .data a view of it),
 * their state (momentum buffer, Adam's moments) likewise, and concatenates the gradients, so one
 * grid-stride launch does what the per-parameter rule (optim/sgd.py, optim/adam.py: ~8 array operations,
 * each a kernel, per parameter) does. Same arithmetic in the same order and precision T as those NumPy
 * rules: a hyper-parameter is rounded to T first, as NumPy does with a Python float beside a float32
 * array, and every intermediate is a T.
 *
 * A pointer named *_inout is read and written (the emulator does not NaN-fill it before a launch, as it
 * does every other non-const pointer). Any grid, 1-D blocks.
 */
#define OPTIM_KERNELS(T, S) \
/* SGD with momentum mu, dampening, L2 weight decay wd, Nesterov:  g = grad + wd*p;  \
   b = g (first) or mu*b + (1-dampening)*g;  g = g + mu*b (nesterov) or b;  p = p - lr*g. \
   momentum == 0: buf_inout is not touched (pass any array). */ \
extern "C" __global__ void sgd_step_##S(T* __restrict__ param_inout, const T* __restrict__ grad, \
                                        T* __restrict__ buf_inout, long long size, double lr, double momentum, \
                                        double dampening, double weight_decay, int nesterov, int first) { \
    const T step = (T)lr, mu = (T)momentum, keep = (T)(1.0 - dampening), wd = (T)weight_decay; \
    GRID_STRIDE(i, size) { \
        T p = param_inout[i]; \
        T g = grad[i]; \
        if (weight_decay != 0.0) g = g + wd * p; \
        if (momentum != 0.0) { \
            T b = first ? g : buf_inout[i] * mu + keep * g; \
            buf_inout[i] = b; \
            g = nesterov ? g + mu * b : b; \
        } \
        param_inout[i] = p - step * g; \
    } \
} \
/* Adam (AMSGrad when amsgrad != 0):  g = grad + wd*p;  m = m + (1-beta1)*(g - m);  v = beta2*v + (1-beta2)*g*g; \
   vmax = max(vmax, v) (NaN wins, as NumPy's maximum) and used for v;  \
   p = p - step_size*m / (sqrt(v)/bias2_sqrt + eps), step_size = lr/(1-beta1^t), bias2_sqrt = sqrt(1-beta2^t). \
   amsgrad == 0: vmax_inout is not touched. */ \
extern "C" __global__ void adam_step_##S(T* __restrict__ param_inout, const T* __restrict__ grad, \
                                         T* __restrict__ exp_avg_inout, T* __restrict__ exp_avg_sq_inout, \
                                         T* __restrict__ vmax_inout, long long size, double beta1, double beta2, \
                                         double eps, double weight_decay, double step_size, double bias2_sqrt, \
                                         int amsgrad) { \
    const T c1 = (T)(1.0 - beta1), b2 = (T)beta2, c2 = (T)(1.0 - beta2), wd = (T)weight_decay; \
    const T e = (T)eps, s = (T)step_size, bc2 = (T)bias2_sqrt; \
    GRID_STRIDE(i, size) { \
        T p = param_inout[i]; \
        T g = grad[i]; \
        if (weight_decay != 0.0) g = g + wd * p; \
        T m = exp_avg_inout[i]; \
        m = m + c1 * (g - m); \
        exp_avg_inout[i] = m; \
        T v = exp_avg_sq_inout[i] * b2; \
        v = v + (c2 * g) * g; \
        exp_avg_sq_inout[i] = v; \
        if (amsgrad) { \
            T old = vmax_inout[i]; \
            v = (old != old || old > v) ? old : v; \
            vmax_inout[i] = v; \
        } \
        T denom = sqrt(v) / bc2 + e; \
        param_inout[i] = p - (s * m) / denom; \
    } \
}

OPTIM_KERNELS(float, f32)
OPTIM_KERNELS(double, f64)
