import Foundation
import FuzzTargets

#if FUZZING
import CLibFuzzer

// The fuzz build (`scripts/fuzz.sh`): libFuzzer's loop runs the target named by SMS_FUZZ_TARGET. SwiftPM makes
// this file's code the program's `main` (it links ELF executables with `main` aliased to the module's entry
// point), so libFuzzer's own `main` is never used: its driver is started from here instead.
guard let name = ProcessInfo.processInfo.environment["SMS_FUZZ_TARGET"], let chosen = FuzzTarget(rawValue: name)
else {
    let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
    FileHandle.standardError.write(Data("set SMS_FUZZ_TARGET to one of: \(names)\n".utf8))
    exit(2)
}
nonisolated(unsafe) var selected = chosen
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
/// libFuzzer's entry point for one input (libFuzzer's runtime refers to it by name).
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let failures = selected.run(bytes)
    if !failures.isEmpty { fatalError("property violated (\(selected.rawValue)): \(failures)") }
    return 0
}
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
#else
// The normal build: a replayer. `sms-fuzz <target> <file or directory>…` runs every input through the same
// target function as the fuzzer and exits 1 when a property is violated (a crash stops it, as in the fuzzer).
let arguments = CommandLine.arguments.dropFirst()
guard let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count >= 2 else {
    let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
    print("usage: sms-fuzz <\(names)> <file or directory>…")
    exit(2)
}
var violated = false
var count = 0
for path in arguments.dropFirst() {
    for file in FuzzCorpus.files(at: URL(fileURLWithPath: path)) {
        let bytes = try [UInt8](Data(contentsOf: file))
        count += 1
        let failures = target.run(bytes)
        if !failures.isEmpty {
            violated = true
            print("\(file.path): \(failures.joined(separator: "; "))")
        }
    }
}
print("\(count) inputs, \(violated ? "properties violated" : "no violation")")
exit(violated ? 1 : 0)
#endif
