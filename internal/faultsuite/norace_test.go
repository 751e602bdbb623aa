//go:build !race

package faultsuite

// raceEnabled reports that the tests run with the race detector.
const raceEnabled = false
