#ifndef CMPI_SHIM_H
#define CMPI_SHIM_H
/*
 * Why this shim exists: Open MPI defines its predefined handles as macros that take the
 * address of global objects of incomplete struct type (MPI_COMM_WORLD is
 * ((MPI_Comm) &ompi_mpi_comm_world)), and MPI_IN_PLACE as ((void *) 1). Swift imports neither
 * form. These static inline accessors return the same values and cost nothing.
 */
#include <mpi.h>
static inline MPI_Comm     cmpi_comm_world(void)    { return MPI_COMM_WORLD; }
static inline MPI_Datatype cmpi_float(void)         { return MPI_FLOAT; }
static inline MPI_Datatype cmpi_int32(void)         { return MPI_INT32_T; }
static inline MPI_Datatype cmpi_byte(void)          { return MPI_BYTE; }
static inline MPI_Datatype cmpi_int64(void)         { return MPI_INT64_T; }
static inline MPI_Op       cmpi_sum(void)           { return MPI_SUM; }
static inline MPI_Op       cmpi_max(void)           { return MPI_MAX; }
static inline MPI_Info     cmpi_info_null(void)     { return MPI_INFO_NULL; }
static inline void *       cmpi_in_place(void)      { return MPI_IN_PLACE; }
static inline MPI_Status * cmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
#endif
