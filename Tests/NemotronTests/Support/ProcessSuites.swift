import Testing

/// Parent of every suite that spawns nemotron-run or mpirun. Serialized as a whole: concurrent
/// MPI jobs would oversubscribe the cores and show each other's live shared-memory segments
/// to the /dev/shm checks.
@Suite("Processes", .serialized)
enum ProcessSuites {}
