// Command stacks benchmarks Berth against CNCF Distribution on the stacks around the
// registry core, sharing one harness (common.go, registry.go):
//
//	go run ./bench/stacks auth       # token and Basic auth vs Distribution with htpasswd (auth.go)
//	go run ./bench/stacks scaleout   # S3 + PostgreSQL, catalog, replicas behind nginx (main.go)
//
// Flags after the suite name belong to it (-h lists them).
package main

import (
	"fmt"
	"os"
)

func main() {
	suites := map[string]func(){"auth": authMain, "scaleout": scaleoutMain}
	if len(os.Args) < 2 || suites[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/stacks auth|scaleout [flags]")
		os.Exit(2)
	}
	suite := suites[os.Args[1]]
	os.Args = append(os.Args[:1:1], os.Args[2:]...)
	suite()
}
