//go:build race

package hub_test

// raceEnabled: under the race detector, Go code (wazero's decoder and
// compiler, the metering pass) runs ten to twenty times slower.
const raceEnabled = true
