export function GrafanaLink({ href, label, testId }: { href: string | null; label: string; testId: string }) {
  if (!href) return null;
  return (
    <a className="button button-secondary" href={href} target="_blank" rel="noopener noreferrer" data-testid={testId}>
      {label} ↗
    </a>
  );
}
