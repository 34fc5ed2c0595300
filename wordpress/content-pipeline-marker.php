<?php
/**
 * Plugin Name: content-pipeline marker
 * Description: Lets content-pipeline recognise the posts it made. Registers two protected post meta keys
 *   in the REST API (_content_pipeline_slug: the catalogue slug the post is for; _content_pipeline_key: the
 *   idempotency key of the content last sent) and a `content_pipeline_slug` filter on GET /wp/v2/posts.
 *   Post meta stays with a post through every edit of its title, content, slug or status, and protected
 *   keys (leading underscore) are not shown in the editor's Custom Fields box. Any user may mark a post they
 *   can edit: content-pipeline takes a marked post as its own only when its publishing user is the author.
 * Version: 2
 *
 * Install: copy this file into wp-content/mu-plugins/ (must-use plugins load without activation).
 */

if (!defined('ABSPATH')) {
    exit;
}

const CONTENT_PIPELINE_META = ['_content_pipeline_slug', '_content_pipeline_key'];

add_action('init', function () {
    foreach (CONTENT_PIPELINE_META as $key) {
        register_post_meta('post', $key, [
            'type' => 'string',
            'single' => true,
            // Read back only in the edit context (by users who may edit the post): a visitor never sees a key.
            'show_in_rest' => ['schema' => ['type' => 'string', 'context' => ['edit']]],
            'sanitize_callback' => function ($value) {
                return preg_replace('/[^a-z0-9-]/', '', strtolower((string) $value));
            },
            'auth_callback' => function ($allowed, $meta_key, $post_id) {
                return current_user_can('edit_post', $post_id);
            },
        ]);
    }
});

// GET /wp/v2/posts?content_pipeline_slug=SLUG: the posts marked as made for SLUG, whatever their own slug.
add_filter('rest_post_query', function ($args, $request) {
    $slug = $request->get_param('content_pipeline_slug');
    if (is_string($slug) && $slug !== '') {
        $args['meta_query'] = [['key' => '_content_pipeline_slug', 'value' => $slug]];
    }
    return $args;
}, 10, 2);
