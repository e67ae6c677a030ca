/** Image references: the sidecar's image, configured or overridden per pod, is pinned. */

/**
 * Pinned: a digest, or a tag other than `latest` (`busybox` alone means `busybox:latest`). The tag is looked for
 * in the last path segment only, so a registry port (`registry:5000/busybox`) is not mistaken for one.
 */
export function isPinnedImage(image: string): boolean {
  if (/@sha256:[a-f0-9]{64}$/.test(image)) return true;
  const tag = /:([\w][\w.-]{0,127})$/.exec(image.split('/').at(-1) ?? '')?.[1];
  return tag !== undefined && tag !== 'latest';
}

export const PINNED_IMAGE_RULE = 'must be pinned to a tag or digest other than latest';
