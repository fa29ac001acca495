// libFuzzer target: config.json through the JSON parser and `ModelConfig`, then the shard plan
// of every accepted config at 1, 2 and 4 ranks.
import Foundation

@testable import Nemotron

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let json = try? JSONParser.parse(Data(bytes: data, count: size), path: "config.json") as? [String: Any],
        let config = try? ModelConfig(json: JSONObject(values: json, path: "config.json"))
    else { return 0 }
    _ = (config.inProjSize, config.convChannels, config.expertInputSize, config.pattern)
    for size in [1, 2, 4] {
        for rank in 0..<size {
            _ = try? ShardPlan(config: config, layout: .tensorParallel(size: size, rank: rank))
            if config.has(.moe) {
                _ = try? ShardPlan(config: config, layout: .attentionDataParallel(size: size, rank: rank))
            }
        }
    }
    return 0
}
