package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// completeFlag is the hidden flag urfave/cli v2 answers with the words
// that may follow (EnableBashCompletion): the completion scripts below ask
// the binary itself, so they never go stale as commands and flags change.
const completeFlag = "--generate-bash-completion"

// bashCompletion is adapted from urfave/cli v2's autocomplete/bash_autocomplete
// (MIT), made self-contained: it needs neither the bash-completion package
// (_get_comp_words_by_ref) nor eval. When modelreg suggests nothing (a REF
// or DIR argument), bash falls back to file names (-o default).
const bashCompletion = `# bash completion for modelreg; load with: source <(modelreg completion bash)
_modelreg_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local -a words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  local opts
  if [[ "$cur" == -* ]]; then
    opts=$("${words[@]}" "$cur" ` + completeFlag + ` 2>/dev/null)
  else
    opts=$("${words[@]}" ` + completeFlag + ` 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  return 0
}
complete -o bashdefault -o default -F _modelreg_complete modelreg
`

// zshCompletion is urfave/cli v2's autocomplete/zsh_autocomplete (MIT) for
// the name modelreg.
const zshCompletion = `#compdef modelreg
# zsh completion for modelreg; load with: source <(modelreg completion zsh)
# (compinit must have run), or save as _modelreg in a folder of $fpath.
_modelreg() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} ` + completeFlag + ` 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ` + completeFlag + ` 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _modelreg modelreg
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: "Completes commands, subcommands and flags; arguments complete as file names.\n\n" +
			"Examples:\n  source <(modelreg completion bash)                  # this shell; add it to ~/.bashrc to keep it\n" +
			"  modelreg completion zsh > \"${fpath[1]}/_modelreg\"   # zsh, then restart it\n" +
			"  modelreg completion fish > ~/.config/fish/completions/modelreg.fish",
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, "SHELL"); err != nil {
				return err
			}
			w := c.App.Writer
			switch sh := c.Args().First(); sh {
			case "bash":
				_, err := fmt.Fprint(w, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(w, zshCompletion)
				return err
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(w, s)
				return err
			default:
				return usageError{fmt.Errorf("completion: unknown shell %q: want bash, zsh or fish", sh)}
			}
		},
	}
}
