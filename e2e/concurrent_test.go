package e2e

import (
	"cmp"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// concurrentPushes is the number of push processes started at once.
const concurrentPushes = 10

// TestConcurrentPush starts ten `modelreg push` processes of different
// content at the same moment against one repository: every push gets its
// own version, v1..v10, and each version tag resolves to that push's
// content. All ten share the silero weights blob, so they also upload the
// same blob concurrently, on every registry of the fleet (docker-registry
// 2.8 included: version allocation must hold on each).
func TestConcurrentPush(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		needModelreg(t)
		c := newCLI(t)
		repo := repoName(t)
		repository := r.ref(repo, "")

		dirs := make([]string, concurrentPushes)
		for i := range dirs {
			dirs[i] = copyModel(t, modelSilero)
			writeFile(t, filepath.Join(dirs[i], "README.md"), []byte(fmt.Sprintf("# push %d of %d\n", i+1, concurrentPushes)))
			writeFile(t, filepath.Join(dirs[i], "calibration.bin"), randomBytes(t, 32<<10))
		}

		results := make([]result, concurrentPushes)
		errs := make([]error, concurrentPushes)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range dirs {
			wg.Go(func() {
				<-start
				results[i], errs[i] = runCommand(c.dir, c.env, modelregBin, jsonArgs("push", []string{repository, dirs[i]})...)
			})
		}
		close(start)
		wg.Wait()

		// version → index of the push that got it.
		byVersion := map[string]int{}
		digests := map[string]bool{}
		pushes := make([]pushJSON, concurrentPushes)
		for i, res := range results {
			if errs[i] != nil {
				t.Fatalf("push %d: %v\n%s", i+1, errs[i], res)
			}
			if res.code != exitOK {
				t.Fatalf("push %d: want exit code 0:\n%s", i+1, res)
			}
			decodeJSON(t, res, &pushes[i])
			p := pushes[i]
			if !p.Created {
				t.Errorf("push %d reports created=false for new content (version %s)", i+1, p.Version)
			}
			if j, dup := byVersion[p.Version]; dup {
				t.Fatalf("pushes %d and %d both report version %s", j+1, i+1, p.Version)
			}
			byVersion[p.Version] = i
			if digests[p.Digest] {
				t.Fatalf("two pushes of different content report digest %s", p.Digest)
			}
			digests[p.Digest] = true
		}
		var want []string
		for i := 1; i <= concurrentPushes; i++ {
			want = append(want, fmt.Sprintf("v%d", i))
		}
		if got := sortedVersions(slices.Collect(maps.Keys(byVersion))); !slices.Equal(got, want) {
			t.Fatalf("versions reported by the pushes: %v, want %v", got, want)
		}

		// The registry agrees: versions lists exactly v1..v10, and each tag
		// resolves to its own push.
		var vs versionsJSON
		c.okJSON(&vs, "versions", repository)
		listed := vs.versionMap()
		rc := repoClient(t, r, repo)
		for _, v := range want {
			p := pushes[byVersion[v]]
			if listed[v] != p.Digest {
				t.Errorf("versions: %s → %q, the push that got %s made %s", v, listed[v], v, p.Digest)
			}
			if got := resolve(t, rc, v); got != p.Digest {
				t.Errorf("tag %s resolves to %s, the push that got %s made %s", v, got, v, p.Digest)
			}
		}
		if len(listed) != concurrentPushes {
			t.Errorf("versions lists %d versions, want %d: %v", len(listed), concurrentPushes, listed)
		}

		// Each version holds exactly what its push read.
		for _, v := range want {
			i := byVersion[v]
			out := filepath.Join(t.TempDir(), v)
			c.ok("pull", r.ref(repo, ":"+v), out)
			assertSameFiles(t, dirs[i], out)
		}
	}, regOlareg, regDistribution, regDocker28)
}

// sortedVersions sorts "vN" tags by N; other strings sort first.
func sortedVersions(vs []string) []string {
	n := func(v string) int {
		i, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
		if err != nil {
			return -1
		}
		return i
	}
	out := slices.Clone(vs)
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(n(a), n(b)) })
	return out
}
