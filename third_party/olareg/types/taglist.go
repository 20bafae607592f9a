package types

type TagList struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}
