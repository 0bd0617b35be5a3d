// Command scanapp is the Go program in the vulnerability-scanning tests' images: it
// links golang.org/x/sync so that the scanner finds that module in its build info.
package main

import (
	"fmt"

	"golang.org/x/sync/errgroup"
)

func main() {
	var g errgroup.Group
	g.Go(func() error { fmt.Println("scanned"); return nil })
	_ = g.Wait()
}
