/* Element-wise losses, shared by the batch loss cores (losses.pxi) and the scalar path (scalar.h).
 *
 * Each returns one element's loss term and stores its gradient, already scaled by 1/N, in *g.
 * Everything in double; callers round the gradient once into the data's dtype.
 */
#ifndef SKIPNET_LOSS_TERMS_H
#define SKIPNET_LOSS_TERMS_H

#include <math.h>

/* |yhat - y|; d/dyhat = sign(yhat - y) with sign(0) = 0 (PyTorch's l1_loss) */
static inline double loss_l1_term(double yhat, double y, double scale, double *g)
{
    double r = yhat - y;
    *g = r > 0 ? scale : (r < 0 ? -scale : 0.0);
    return fabs(r);
}

/* (yhat - y)^2 */
static inline double loss_mse_term(double yhat, double y, double scale, double *g)
{
    double r = yhat - y;
    *g = 2.0 * r * scale;
    return r * r;
}

static inline double loss_sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* softplus(z) - y z = max(z, 0) - y z + log1p(exp(-|z|)) on a logit z: never log(sigmoid), never
   overflows; d/dz = sigmoid(z) - y */
static inline double loss_bce_term(double z, double y, double scale, double *g)
{
    *g = (loss_sigmoid(z) - y) * scale;
    return (z > 0 ? z : 0.0) - y * z + log1p(exp(-fabs(z)));
}

#endif
