package types

const (
	HeaderDockerDigest = "Docker-Content-Digest"
)
