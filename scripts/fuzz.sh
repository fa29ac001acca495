#!/usr/bin/env bash
# Runs one libFuzzer target for a given time (not part of CI: too slow; the crash inputs it
# finds become regular tests under Tests/NemotronTests/Fixtures/fuzz/).
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   TARGET: safetensors | tokenizer | config | runconfig | chat      (Fuzz/Targets/TARGET.swift)
#
# Builds, under .build/fuzz/, the Nemotron module with AddressSanitizer and libFuzzer's coverage
# instrumentation (Yams and the C kernels with AddressSanitizer only), then links the target's
# entry file against it with `swiftc -sanitize=fuzzer,address`. The committed seeds in
# Fuzz/corpus/TARGET are read, never written: new inputs go to .build/fuzz/corpus/TARGET, and
# crashes, timeouts, leaks and out-of-memory inputs to .build/fuzz/artifacts/TARGET/. Runs at
# `nice -n 10` on one core. Prints libFuzzer's final statistics; exits non-zero on a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options]}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options]}
shift 2
[ -f "Fuzz/Targets/$target.swift" ] || { echo "no target Fuzz/Targets/$target.swift" >&2; exit 2; }

root=$PWD
out=.build/fuzz
mkdir -p "$out/lib" "$out/corpus/$target" "$out/artifacts/$target"
yams=.build/checkouts/Yams/Sources
if [ ! -d "$yams" ]; then swift package resolve; fi
sanitize=(-sanitize=address)
# libFuzzer's coverage (inline 8-bit counters, compare tracing), without its main: a static library.
coverage=(-sanitize=fuzzer,address)

# Rebuilds the Nemotron library only when a source changed.
stamp=$(cat Sources/Nemotron/**/*.swift Sources/Nemotron/*/*.swift Sources/CKernels/*.c 2>/dev/null | sha1sum | cut -c1-16)
if [ ! -f "$out/lib/stamp-$stamp" ]; then
    rm -f "$out"/lib/stamp-*
    echo "fuzz: building the instrumented library (a few minutes)" >&2
    # C: libyaml and the kernels.
    for file in "$yams"/CYaml/src/*.c; do
        clang -fsanitize=address -O1 -g -DYAML_DECLARE_EXPORT -I "$yams/CYaml/include" -c "$file" \
            -o "$out/lib/yaml-$(basename "$file" .c).o"
    done
    for file in Sources/CKernels/*.c; do
        clang -fsanitize=address -O2 -g -I Sources/CKernels/include -c "$file" -o "$out/lib/ck-$(basename "$file" .c).o"
    done
    printf 'module CKernels {\n    umbrella "%s/Sources/CKernels/include"\n    export *\n}\n' "$root" \
        > "$out/lib/CKernels.modulemap"
    # Swift: Yams, then Nemotron (internals visible to the targets through -enable-testing).
    swiftc "${sanitize[@]}" -O -g -D SWIFT_PACKAGE -parse-as-library -module-name Yams -suppress-warnings -emit-module -emit-module-path "$out/lib/Yams.swiftmodule" \
        -emit-library -static -o "$out/lib/libYams.a" -I "$yams/CYaml/include" "$yams"/Yams/*.swift
    swiftc "${coverage[@]}" -O -g -enable-testing -parse-as-library -module-name Nemotron -emit-module \
        -emit-module-path "$out/lib/Nemotron.swiftmodule" -emit-library -static -o "$out/lib/libNemotron.a" \
        -I "$out/lib" -I "$yams/CYaml/include" -I Sources/COpenBLAS \
        -Xcc -fmodule-map-file="$out/lib/CKernels.modulemap" \
        $(find Sources/Nemotron -name '*.swift' | sort)
    touch "$out/lib/stamp-$stamp"
fi
binary="$out/$target"
if [ ! -x "$binary" ] || [ "Fuzz/Targets/$target.swift" -nt "$binary" ] || [ "$out/lib/libNemotron.a" -nt "$binary" ]
then
    swiftc -sanitize=fuzzer,address -O -g -parse-as-library -module-name "Fuzz_$target" \
        -I "$out/lib" -I "$yams/CYaml/include" -I Sources/COpenBLAS -Xcc -fmodule-map-file="$out/lib/CKernels.modulemap" \
        "Fuzz/Targets/$target.swift" -o "$binary" \
        -L "$out/lib" -lNemotron -lYams "$out"/lib/yaml-*.o "$out"/lib/ck-*.o -lopenblas
fi

dictionary=()
[ -f "Fuzz/Dictionaries/$target.dict" ] && dictionary=(-dict="Fuzz/Dictionaries/$target.dict")
echo "fuzz: $target for $seconds s (seeds: Fuzz/corpus/$target)" >&2
# One core, behind everyone else's work; a second per input at most; 2 GiB of memory at most.
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 nice -n 10 "$binary" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$target/" "${dictionary[@]}" "$@" "$out/corpus/$target" "Fuzz/corpus/$target"
