package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/proxy"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/server"
)

func mirrorCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "mirror", Short: "Operate the pull-through cache of upstream registries"}

	var fromFile string
	var platforms, hfInclude, hfExclude []string
	remote := &adminClient{}
	warm := &cobra.Command{
		Use:   "warm [IMAGE|hf://ORG/MODEL[@REV]...]",
		Short: "Pre-fill the cache with images (e.g. the output of kubeadm config images list) and Hugging Face models",
		Long: `Pre-fill the cache with images. With --url the running server does the work (any
database and storage, from a laptop: only admin credentials are needed) and its progress
is streamed back; without, this command opens the configured database and storage itself.`,
		Example: `  kubeadm config images list | berth mirror warm --from-file - --platform linux/amd64
  berth mirror warm registry.k8s.io/pause:3.10 registry.k8s.io/coredns/coredns:v1.11.3
  berth mirror warm hf://Qwen/Qwen2.5-0.5B-Instruct@main --include '*.json' --include '*.safetensors'
  BERTH_ADMIN_PASSWORD=… berth mirror warm --url https://berth.internal:5000 --username admin registry.k8s.io/pause:3.10`,
		RunE: func(cmd *cobra.Command, args []string) error {
			images := append([]string(nil), args...)
			if fromFile != "" {
				more, err := readImageList(fromFile)
				if err != nil {
					return err
				}
				images = append(images, more...)
			}
			models, images := splitModels(images)
			if len(images) == 0 && len(models) == 0 {
				return fmt.Errorf("no images given (arguments or --from-file)")
			}
			if remote.url != "" {
				if len(hfInclude)+len(hfExclude) > 0 {
					return fmt.Errorf("--include and --exclude apply without --url (the server warms whole revisions)")
				}
				return remote.warm(cmd, append(models, images...), platforms)
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			m, b, err := server.OpenStores(ctx, cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			log := newLogger(cfg)
			reg := registry.New(m, b, registry.Options{}, log)
			if len(models) > 0 {
				if err := warmModels(cmd, cfg, m, reg, models, hfInclude, hfExclude, log); err != nil || len(images) == 0 {
					return err
				}
			}
			mirror, err := server.NewMirror(cfg, m, reg, log)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var fetched, cached int64
			err = mirror.Warm(ctx, images, platforms, func(ev proxy.WarmEvent) {
				l := warmLine{Image: ev.Image, Kind: ev.Kind, Digest: ev.Digest, Size: ev.Size, Cached: ev.Cached}
				if ev.Err != nil {
					l.Error = ev.Err.Error()
				}
				printWarm(out, l)
				if ev.Err == nil && ev.Cached {
					cached += ev.Size
				} else if ev.Err == nil && ev.Kind != "manifest" {
					fetched += ev.Size
				}
			})
			printWarm(out, warmLine{Done: true, Images: len(images), FetchedBytes: fetched, CachedBytes: cached})
			return err
		},
	}
	warm.Flags().StringVar(&fromFile, "from-file", "", "read image references from a file, one per line (- for stdin)")
	warm.Flags().StringVar(&remote.url, "url", "", "ask the running Berth at this URL to warm (admin API; credentials as for berth admin) instead of opening the database")
	warm.Flags().StringVar(&remote.username, "username", "", "administrator name for --url (default $BERTH_ADMIN_USERNAME)")
	warm.Flags().BoolVar(&remote.passwordStdin, "password-stdin", false, "read the password for --url from the first line of stdin (default $BERTH_ADMIN_PASSWORD)")
	warm.Flags().StringSliceVar(&platforms, "platform", nil, "only these platforms of multi-platform images (os/arch[/variant]; repeatable); default all")
	warm.Flags().StringSliceVar(&hfInclude, "include", nil, "for hf:// models: only files matching these patterns (path or base name, e.g. '*.safetensors'); default all")
	warm.Flags().StringSliceVar(&hfExclude, "exclude", nil, "for hf:// models: skip files matching these patterns")

	var berthURL, dir, caFile, namespace, installImage string
	var kube bool
	nodeCfg := &cobra.Command{
		Use:   "config containerd|docker|crio",
		Short: "Print or write the node configuration that points a container runtime at this Berth",
		Long: `Print the configuration that points a node's container runtime at this Berth for every
configured upstream, or write it as files with --dir. containerd gets one hosts.toml per
upstream in its certs.d tree (--dir is that tree's root, e.g. /etc/containerd/certs.d);
docker and crio get their files under --dir as on the node (DIR/etc/...). Over https
with tls.mode self-signed, Berth's CA is installed beside them (or the CA given by --ca),
so no runtime skips verification; over plain http no TLS setting is written.`,
		Example: `  berth mirror config containerd --url https://berth.internal:5000 --dir /etc/containerd/certs.d
  berth mirror config containerd --url https://berth.internal:5000 --kubernetes | kubectl apply -f -
  berth mirror config crio --url https://berth.internal:5000 --ca ./corp-ca.pem`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"containerd", "docker", "crio"},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			if len(cfg.Mirror.Upstreams) == 0 {
				return fmt.Errorf("no upstreams configured (mirror.upstreams)")
			}
			var ca []byte
			if strings.HasPrefix(berthURL, "https:") {
				if ca, err = caForNodes(cmd.Context(), cfg, caFile); err != nil {
					return err
				}
			}
			if kube {
				if args[0] != "containerd" {
					return fmt.Errorf("--kubernetes renders containerd's files only (CRI-O must reload registries.conf; install it with your node tooling)")
				}
				files, err := proxy.NodeFiles(args[0], berthURL, cfg.Mirror, ca)
				if err != nil {
					return err
				}
				out, err := kubeNodeConfig(files, namespace, installImage)
				if err != nil {
					return err
				}
				fmt.Fprint(cmd.OutOrStdout(), out)
				return nil
			}
			if dir == "" {
				out, err := proxy.NodeConfig(args[0], berthURL, cfg.Mirror, ca)
				if err != nil {
					return err
				}
				fmt.Fprint(cmd.OutOrStdout(), out)
				return nil
			}
			files, err := proxy.NodeFiles(args[0], berthURL, cfg.Mirror, ca)
			if err != nil {
				return err
			}
			return writeNodeFiles(cmd, args[0], dir, files)
		},
	}
	nodeCfg.Flags().StringVar(&berthURL, "url", "http://127.0.0.1:5000", "the URL nodes reach this Berth at")
	nodeCfg.Flags().StringVar(&dir, "dir", "", "write the files under this directory instead of printing them")
	nodeCfg.Flags().BoolVar(&kube, "kubernetes", false, "print a ConfigMap and DaemonSet that install the containerd files on every node")
	nodeCfg.Flags().StringVar(&namespace, "namespace", "kube-system", "namespace of the --kubernetes objects")
	nodeCfg.Flags().StringVar(&installImage, "install-image", "busybox:1.36", "image with sh, cp and mv that --kubernetes installs the files with")
	nodeCfg.Flags().StringVar(&caFile, "ca", "", "CA certificate (PEM) nodes must trust for --url (default: Berth's own in tls.mode self-signed)")
	cmd.AddCommand(warm, nodeCfg)
	return cmd
}

// writeNodeFiles writes the node files under dir: containerd's relative to its certs.d
// root, the others at their node path below dir.
func writeNodeFiles(cmd *cobra.Command, kind, dir string, files []proxy.NodeFile) error {
	for _, f := range files {
		rel := f.Path
		if kind == "containerd" {
			rel = strings.TrimPrefix(rel, proxy.ContainerdCertsDir)
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		// Temp file + rename: containerd rereads hosts.toml per pull and must never see
		// half a file.
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(f.Content), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", p)
	}
	return nil
}

func readImageList(path string) ([]string, error) {
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, err
		}
		defer f.Close()
	}
	var images []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			images = append(images, line)
		}
	}
	return images, sc.Err()
}
