package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"
)

// warm asks the running server to warm its mirror cache (POST /api/v1/mirror/warm) and
// prints its streamed progress as the local warm-up does.
func (c *adminClient) warm(cmd *cobra.Command, images, platforms []string) error {
	if err := c.setup(cmd); err != nil {
		return err
	}
	body, err := json.Marshal(map[string][]string{"images": images, "platforms": platforms})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, c.url+adminAPIPrefix+"/mirror/warm", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(c.username, c.password)
	res, err := (&http.Client{}).Do(req) // no timeout: a warm-up takes as long as its images
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var e apiError
		if json.NewDecoder(res.Body).Decode(&e) == nil && len(e.Errors) > 0 {
			return fmt.Errorf("%s (HTTP %d): %s", e.Errors[0].Code, res.StatusCode, e.Errors[0].Message)
		}
		return fmt.Errorf("POST /mirror/warm: %s", res.Status)
	}
	out := cmd.OutOrStdout()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line warmLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("warm-up stream: %w", err)
		}
		printWarm(out, line)
		if line.Done {
			if line.Failed > 0 || line.Error != "" {
				return fmt.Errorf("%d of %d images failed: %s", line.Failed, line.Images, line.Error)
			}
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("warm-up stream: %w", err)
	}
	return fmt.Errorf("the server ended the warm-up stream without a summary")
}

// warmLine is one line of a warm-up's progress (the admin API's NDJSON stream, or the
// local mirror's events): a step, or with Done the summary.
type warmLine struct {
	Image, Kind, Digest, Error string
	Size                       int64
	Cached, Done               bool
	Images, Failed             int
	FetchedBytes, CachedBytes  int64
}

func printWarm(out io.Writer, l warmLine) {
	switch {
	case l.Done:
		fmt.Fprintf(out, "warm-up: %d images, %d bytes fetched, %d bytes already cached\n", l.Images, l.FetchedBytes, l.CachedBytes)
	case l.Error != "":
		fmt.Fprintf(out, "FAIL    %s: %s\n", l.Image, l.Error)
	case l.Kind == "manifest":
		fmt.Fprintf(out, "manifest %s %s\n", l.Image, l.Digest)
	case l.Cached:
		fmt.Fprintf(out, "cached  %s %s (%d bytes)\n", l.Image, l.Digest, l.Size)
	default:
		fmt.Fprintf(out, "fetched %s %s (%d bytes)\n", l.Image, l.Digest, l.Size)
	}
}
