package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// repoPath is the admin API path of a repository: project, then the rest of the name
// as one path segment ("/" escaped as %2F).
func repoPath(repo string) (string, error) {
	project, rest, ok := strings.Cut(repo, "/")
	if !ok || project == "" || rest == "" {
		return "", fmt.Errorf("%q: want PROJECT/REPOSITORY", repo)
	}
	return "/projects/" + url.PathEscape(project) + "/repositories/" + url.PathEscape(rest), nil
}

func pullStamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return stamp(*t)
}

func (c *adminClient) repoCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "repo", Short: "List and delete repositories online (bytes are freed by online GC)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list PROJECT",
		Short: "List a project's repositories with size, tags, last push and pulls",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			items, err := c.listAll(cmd.Context(), "/projects/"+url.PathEscape(args[0])+"/repositories", "repositories")
			if err != nil {
				return err
			}
			return c.printList("repositories", items, "NAME\tSIZE\tTAGS\tMANIFESTS\tLAST PUSH\tLAST PULL\tPULLS", func(raw json.RawMessage) (string, error) {
				var r struct {
					Name          string
					Size          int64
					TagCount      int `json:"tagCount"`
					ManifestCount int `json:"manifestCount"`
					LastPushAt    *time.Time
					LastPullAt    *time.Time
					PullCount     int64
				}
				err := json.Unmarshal(raw, &r)
				return fmt.Sprintf("%s\t%s\t%d\t%d\t%s\t%s\t%d", r.Name, humanBytes(r.Size), r.TagCount, r.ManifestCount, pullStamp(r.LastPushAt), pullStamp(r.LastPullAt), r.PullCount), err
			})
		},
	}, &cobra.Command{
		Use:   "delete PROJECT/REPOSITORY",
		Short: "Delete a repository with its tags and manifests, online",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := repoPath(args[0])
			if err != nil {
				return err
			}
			if err := c.send(cmd, http.MethodDelete, p, nil, nil, nil); err != nil {
				return err
			}
			return c.done("deleted repository %s (online GC frees its bytes)", args[0])
		},
	})
	return cmd
}

func (c *adminClient) tagCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tag", Short: "List and delete tags and manifests online"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list PROJECT/REPOSITORY",
		Short: "List a repository's tags with digest, size, platforms and pulls",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := repoPath(args[0])
			if err != nil {
				return err
			}
			items, err := c.listAll(cmd.Context(), p+"/tags", "tags")
			if err != nil {
				return err
			}
			return c.printList("tags", items, "TAG\tDIGEST\tSIZE\tPLATFORMS\tPUSHED\tLAST PULL\tPULLS", func(raw json.RawMessage) (string, error) {
				var tg struct {
					Name     string
					Artifact struct {
						Digest     string
						Size       int64
						Platforms  []string
						PushedAt   time.Time
						LastPullAt *time.Time
						PullCount  int64
					}
				}
				err := json.Unmarshal(raw, &tg)
				a := tg.Artifact
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%d", tg.Name, a.Digest, humanBytes(a.Size), strings.Join(a.Platforms, ","), stamp(a.PushedAt), pullStamp(a.LastPullAt), a.PullCount), err
			})
		},
	}, &cobra.Command{
		Use:   "delete PROJECT/REPOSITORY:TAG | PROJECT/REPOSITORY@DIGEST",
		Short: "Delete a tag (the manifest stays until GC finds it untagged), or a manifest by digest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			var repo, suffix string
			if i := strings.Index(ref, "@"); i >= 0 {
				repo, suffix = ref[:i], "/manifests/"+url.PathEscape(ref[i+1:])
			} else if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
				repo, suffix = ref[:i], "/tags/"+url.PathEscape(ref[i+1:])
			} else {
				return fmt.Errorf("%q: want PROJECT/REPOSITORY:TAG or PROJECT/REPOSITORY@DIGEST", ref)
			}
			p, err := repoPath(repo)
			if err != nil {
				return err
			}
			if err := c.send(cmd, http.MethodDelete, p+suffix, nil, nil, nil); err != nil {
				return err
			}
			return c.done("deleted %s", ref)
		},
	})
	return cmd
}
