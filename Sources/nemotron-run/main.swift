import Foundation
import Nemotron
import NemotronMPI

// Must run before anything else: OpenBLAS reads its core type and thread count when the library loads.
BLASRuntime.ensureEnvironment()
NemotronRun.launch()
