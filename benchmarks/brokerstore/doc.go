// Package brokerstore measures the embedded broker's persistence
// (internal/embedbroker's WithDataDir) on the project's filestore against
// bbolt, behind the same store interface: the measurement that chose
// filestore. It has tests only; see measure_test.go for the commands.
package brokerstore
