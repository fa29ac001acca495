#ifndef CKERNELS_AFFINITY_H
#define CKERNELS_AFFINITY_H
/*
 * CPU affinity: sched_getaffinity and pthread_setaffinity_np are GNU extensions that Swift's
 * Glibc module does not export, so these two thin wrappers live in C.
 */
/// Writes the CPUs this process may run on, ascending, into cpus (up to max); returns how many.
int ck_allowed_cpus(int *cpus, int max);
/// Pins the calling thread to one CPU; returns 0 on success.
int ck_pin_current_thread(int cpu);
#endif
