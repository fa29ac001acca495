import Foundation
import Nemotron
import NemotronMPI

// Must run before anything else: OpenBLAS reads its core type when the library loads.
BLASRuntime.ensureCoreType()
NemotronRun.launch()
