package buildinfo

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

// Command is the `version` subcommand of berth and cric: it prints the version, commit, Go version, platform and FIPS 140-3 state.
func Command(program string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version and whether FIPS 140-3 mode is on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := Get()
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(i)
			}
			_, err := fmt.Fprint(cmd.OutOrStdout(), i.String(program))
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
