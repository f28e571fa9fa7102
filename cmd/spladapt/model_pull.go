package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/hub"
	"github.com/spladapt/spladapt/internal/download"
	"github.com/spladapt/spladapt/internal/progress"
)

func newModelPullCmd(a *app) *cobra.Command {
	var revision, out string
	var files []string
	var force bool
	cmd := &cobra.Command{
		Use:   "pull ORG/NAME [--revision R] [--out DIR]",
		Short: "Download a model from the HuggingFace hub into the shared HF cache",
		Long: `Download a model repository's checkpoint files (config.json, model.safetensors,
vocab.txt and tokenizer files; --file to choose others) from the HuggingFace hub
into the cache the hub's own tools use ($HF_HUB_CACHE, else $HF_HOME/hub, else
~/.cache/huggingface/hub: models--ORG--NAME/{blobs,snapshots/COMMIT,refs/REV}).
Every file is checked against the sha256 (LFS files) or git blob id the hub
gives; an interrupted download is resumed by running the same command again.
--out DIR copies the snapshot into a checkpoint directory for --model/--init.
Environment: HF_ENDPOINT (another hub), HF_TOKEN (sent as a bearer token for
private or gated models, never printed), HF_HUB_OFFLINE=1 (use the cache only;
a hub that cannot be reached also falls back to the cached snapshot).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			o := hub.FromEnv(os.Getenv)
			o.Revision = revision
			if len(files) > 0 {
				o.Files = files
			}
			o.Warn = func(msg string) { fmt.Fprintln(stderr, "warning:", msg) }
			o.NewBar = func(file string, total int64) download.Bar {
				return progress.New(os.Stderr, progress.Enabled(cfg.Progress), "download "+file, "bytes", total)
			}
			snap, err := hub.Pull(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			how := fmt.Sprintf("%d downloaded (%d resumed), %d cached", snap.Downloaded, snap.Resumed, len(snap.Files)-snap.Downloaded)
			if snap.Offline {
				how = "offline, from the cache"
			}
			fmt.Fprintf(w, "%s@%s = %s: %d files, %d bytes (%s) in %s\n", snap.Repo, snap.Revision, snap.Commit, len(snap.Files), snap.Size(), how, snap.Dir)
			if out != "" {
				if err := hub.Materialize(snap, out, force); err != nil {
					return err
				}
				fmt.Fprintf(w, "wrote %s\n", out)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&revision, "revision", "main", "branch, tag or commit")
	f.StringVar(&out, "out", "", "also copy the snapshot into this checkpoint directory")
	f.BoolVar(&force, "force", false, "replace an existing --out directory")
	f.StringSliceVar(&files, "file", nil, "files to fetch instead of the checkpoint's (repeatable)")
	return cmd
}
