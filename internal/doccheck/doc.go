// Package doccheck tests the repository's documentation against the code,
// so that neither drifts without a test failing:
//
//   - TestAPISnapshot compares the exported API of every public package
//     (mqttkeep, filestore, mqttkeeptest) with its snapshot in api/. After
//     an intended change, regenerate the snapshots with
//
//     go test ./internal/doccheck -run TestAPISnapshot -update
//
//     and add a line to CHANGELOG.md under "Unreleased".
//
//   - TestCodeBlocksCompile compiles and vets every ```go block of
//     README.md and docs/*.md, and the code under a "Quick start" heading
//     of a public package's doc, against this module.
//
// A code block is compiled when its fence says go; blocks of shell
// commands, output or tables say text (or sh, or nothing). A go block that
// starts with a package clause is a whole file, compiled as it is. Any
// other go block is a fragment: one that starts with func, type, var,
// const or import holds top-level declarations; otherwise it holds
// statements, compiled as the body of a function with a parameter ctx of
// type context.Context. A fragment gets the imports it uses of the
// standard library names and mqttkeep, filestore and mqttkeeptest (see
// knownImports); it must compile and pass go vet as written, so every
// variable it declares is used.
package doccheck
