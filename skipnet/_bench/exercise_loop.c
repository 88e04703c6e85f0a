/* The ceiling of skipnet bench's W0: one epoch of the exercise step written by hand. Layers 1-1-1
   relu/relu/identity, no bias, learned skip 0 -> 2, L1 loss, SGD, batch 1; w = (w0, w1, w2, skip);
   the loss of each step goes to losses (as skipnet records it). Compiled by skipnet/_bench/c_loop.py. */
#include <math.h>

double exercise_epoch(const double *x, const double *y, long n, double *w, double lr, double *losses)
{
    double a = w[0], b = w[1], c = w[2], s = w[3], total = 0;
    for (long i = 0; i < n; i++) {
        double z0 = a * x[i], h0 = z0 > 0 ? z0 : 0;
        double z1 = b * h0, h1 = z1 > 0 ? z1 : 0;
        double r = c * h1 + s * h0 - y[i];
        double g = (r > 0 ? 1.0 : (r < 0 ? -1.0 : 0.0));
        losses[i] = fabs(r);
        total += fabs(r);
        double dz1 = z1 > 0 ? g * c : 0;
        double dz0 = z0 > 0 ? dz1 * b + g * s : 0;
        a -= lr * dz0 * x[i];
        b -= lr * dz1 * h0;
        c -= lr * g * h1;
        s -= lr * g * h0;
    }
    w[0] = a; w[1] = b; w[2] = c; w[3] = s;
    return total;
}
