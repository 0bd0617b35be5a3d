package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/internal/certs"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/meta"
)

func tlsCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "tls", Short: "Inspect Berth's TLS certificates"}
	cmd.AddCommand(&cobra.Command{
		Use:   "ca",
		Short: "Print the CA certificate of tls.mode self-signed, which nodes must trust",
		Example: `  berth tls ca --config berth.yaml > berth-ca.crt
  berth mirror config containerd --url https://berth.internal:5000 --dir /etc/containerd/certs.d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			pem, err := storedCA(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(pem)
			return err
		},
	})
	return cmd
}

// storedCA reads the self-signed CA from the database the configuration names.
func storedCA(ctx context.Context, cfg config.Config) ([]byte, error) {
	if cfg.TLS.EffectiveMode() != config.TLSSelfSigned {
		return nil, fmt.Errorf("tls.mode is %s, not self-signed: there is no Berth CA (pass the CA that signed your certificate with --ca)", cfg.TLS.EffectiveMode())
	}
	m, err := meta.Open(ctx, meta.Options{Dialect: meta.Dialect(cfg.Database.Driver), DSN: cfg.Database.DSN, MaxOpenConns: 1})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	pem, err := certs.StoredCA(ctx, m.DB())
	if errors.Is(err, certs.ErrNotFound) {
		return nil, errors.New("no CA yet: start berth serve with tls.mode self-signed once, then ask again")
	}
	return pem, err
}

// caForNodes is the CA node configuration installs: --ca, else Berth's own CA in mode
// self-signed, else none (a certificate from a CA the nodes already trust).
func caForNodes(ctx context.Context, cfg config.Config, caFile string) ([]byte, error) {
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		return pem, nil
	}
	if cfg.TLS.EffectiveMode() == config.TLSSelfSigned {
		return storedCA(ctx, cfg)
	}
	return nil, nil
}
