package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/spladapt/spladapt/config"
	"github.com/spladapt/spladapt/nn"
)

// app carries what every subcommand shares: one viper per command tree.
type app struct {
	v          *viper.Viper
	configPath string
	// bindings made while the tree is built; see bind.
	bindings []binding
	running  bool
}

type binding struct {
	flag *pflag.Flag
	key  string
}

// NewRootCommand builds the whole command tree. It holds no package-level
// state, so tests build as many trees as they like.
func NewRootCommand() *cobra.Command {
	a := &app{v: config.New()}
	root := &cobra.Command{
		Use:           "spladapt",
		Short:         "Adapt learned sparse retrievers (SPLADE) to new domains",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := a.bindFor(cmd); err != nil {
				return err
			}
			required := cmd.Flags().Changed("config")
			if err := config.ReadFile(a.v, a.configPath, required); err != nil {
				return err
			}
			// kernels (flag, SPLADAPT_KERNELS or the file) is process-wide:
			// applied here for every command.
			if err := nn.SetKernels(a.v.GetString("kernels")); err != nil {
				return fmt.Errorf("kernels: %w", err)
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&a.configPath, "config", "config.yaml", "settings file (YAML); every key is documented in the repository's config.yaml")
	root.PersistentFlags().Bool("skip-invalid", false, "skip malformed input records, reporting each with its file and line")
	root.PersistentFlags().Int("threads", 0, "compute threads (default: config threads)")
	root.PersistentFlags().String("progress", "", "progress display: auto, on or off")
	a.bind(root.PersistentFlags(), "skip-invalid", "skip_invalid")
	a.bind(root.PersistentFlags(), "threads", "threads")
	a.bind(root.PersistentFlags(), "progress", "progress")

	root.AddCommand(newConfigCmd(a))
	// Subcommands register here, one file each.
	for _, mk := range subcommands {
		root.AddCommand(mk(a))
	}
	return root
}

// subcommands is filled by each subcommand file's init: a list of
// constructors, not of flags or state, so command trees stay independent.
var subcommands []func(*app) *cobra.Command

func register(mk func(*app) *cobra.Command) { subcommands = append(subcommands, mk) }

// bind makes flag name override config key (flag > env > file > default).
// Viper keeps one flag per key, so bindings made while the tree is built
// are recorded and applied only for the command that runs (see bindFor):
// two subcommands may then bind the same key to flags of their own. A bind
// made while a command runs takes effect at once.
func (a *app) bind(fs *pflag.FlagSet, name, key string) {
	f := fs.Lookup(name)
	if f == nil {
		panic(fmt.Sprintf("bind: no flag --%s for key %s", name, key)) // programming error
	}
	if a.running {
		if err := a.v.BindPFlag(key, f); err != nil {
			panic(fmt.Sprintf("bind flag %s to %s: %v", name, key, err))
		}
		return
	}
	a.bindings = append(a.bindings, binding{f, key})
}

// bindFor applies the recorded bindings whose flags belong to cmd
// (its own flags and the persistent flags it inherits).
func (a *app) bindFor(cmd *cobra.Command) error {
	a.running = true
	for _, b := range a.bindings {
		if cmd.Flags().Lookup(b.flag.Name) != b.flag {
			continue
		}
		if err := a.v.BindPFlag(b.key, b.flag); err != nil {
			return fmt.Errorf("bind flag --%s to %s: %w", b.flag.Name, b.key, err)
		}
	}
	return nil
}

// config decodes and validates the settings in force for this command.
func (a *app) config() (config.Config, error) {
	return config.Decode(a.v)
}

func newConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show the settings in force"}
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print every setting after flags, SPLADAPT_* environment, config file and defaults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.config(); err != nil {
				return err
			}
			keys := a.v.AllKeys()
			sort.Strings(keys)
			for _, k := range keys {
				if _, ok := config.Keys()[k]; !ok {
					continue
				}
				val := a.v.Get(k)
				if s, ok := val.([]string); ok {
					val = strings.Join(s, ",")
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %v\n", k, val)
			}
			return nil
		},
	})
	return cmd
}
