//go:build race

package main

// raceBuild says the tests run under the race detector; the gale binary the
// process tests start is then built with it too.
const raceBuild = true
