#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H
/* Debian's OpenBLAS ships cblas.h with its own extensions (openblas_set_num_threads,
 * openblas_get_corename); the module map links libopenblas. */
#include <cblas.h>
#endif
